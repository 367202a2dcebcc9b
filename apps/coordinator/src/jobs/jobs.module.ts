import { Module } from '@nestjs/common';
import { SchedulerModule } from '../scheduler/scheduler.module';
import { JobHistoryService } from './job-history.service';
import { JobStreamService } from './job-stream.service';
import { JobsController } from './jobs.controller';
import { JobsService } from './jobs.service';

@Module({ imports: [SchedulerModule], controllers: [JobsController], providers: [JobsService, JobStreamService, JobHistoryService], exports: [JobsService] })
export class JobsModule {}
