import { Module, type DynamicModule } from '@nestjs/common';
import { AuthModule } from './auth/auth.module';
import { CheckpointsModule } from './checkpoints/checkpoints.module';
import type { CoordinatorConfig } from './config/coordinator-config';
import { CoreModule } from './core/core.module';
import { DashboardModule } from './dashboard/dashboard.module';
import { HealthModule } from './health/health.module';
import { JobsModule } from './jobs/jobs.module';
import { MetricsModule } from './metrics/metrics.module';
import { SchedulerModule } from './scheduler/scheduler.module';
import { WorkersModule } from './workers/workers.module';

@Module({})
export class AppModule {
  static forRoot(config: CoordinatorConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(config), SchedulerModule, JobsModule, WorkersModule, MetricsModule, CheckpointsModule, DashboardModule, HealthModule, AuthModule],
    };
  }
}
