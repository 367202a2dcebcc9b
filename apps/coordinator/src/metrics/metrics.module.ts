import { Module } from '@nestjs/common';
import { SchedulerModule } from '../scheduler/scheduler.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

@Module({ imports: [SchedulerModule], controllers: [MetricsController], providers: [MetricsService] })
export class MetricsModule {}
