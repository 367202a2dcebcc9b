import { Module } from '@nestjs/common';
import { DASHBOARD_DIR } from '@tensorfleet/dashboard';
import { DashboardController } from './dashboard.controller';
import { DashboardFiles } from './dashboard-files';

@Module({
  controllers: [DashboardController],
  providers: [{ provide: DashboardFiles, useFactory: () => new DashboardFiles(DASHBOARD_DIR) }],
})
export class DashboardModule {}
