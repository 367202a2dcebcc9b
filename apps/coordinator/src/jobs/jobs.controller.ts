import { Body, Controller, Get, HttpCode, Param, Post, Query, Sse, type MessageEvent } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { JOB_STATES, JobSpecDto, ResumeJobDto, type JobState } from '@tensorfleet/control';
import { documentJobSpec } from './dto/job-spec.api';
import { JobView, toJobView } from './dto/job-view';
import { LogPage, parseLogQuery } from './dto/log-page';
import { JobStreamService } from './job-stream.service';
import { pageParam, specValidationPipe } from './job-validation';
import { JobsService } from './jobs.service';

documentJobSpec();

@ApiTags('jobs')
@Controller('jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService, private readonly stream: JobStreamService) {}

  @Post()
  @ApiOperation({ summary: 'Submit a training job' })
  @ApiBody({ type: JobSpecDto })
  @ApiOkResponse({ type: JobView })
  @ApiBadRequestResponse({ description: '`message`: ["field: problem"], `fields`: dotted names (e.g. optimizer.lr, model.name, dataset)' })
  async submit(@Body(specValidationPipe()) dto: JobSpecDto): Promise<JobView> {
    return toJobView(await this.jobs.submit(dto));
  }

  @Get()
  @ApiOperation({ summary: 'Jobs, newest first, one page at a time (a page shorter than `limit` is the last)' })
  @ApiQuery({ name: 'state', required: false, enum: [...JOB_STATES] })
  @ApiQuery({ name: 'limit', required: false, description: 'page size, 1..1000; default 100' })
  @ApiQuery({ name: 'offset', required: false, description: 'jobs to skip; default 0' })
  @ApiOkResponse({ type: [JobView] })
  async list(@Query('state') state?: JobState, @Query('limit') limit?: string, @Query('offset') offset?: string): Promise<JobView[]> {
    const page = { limit: pageParam('limit', limit, 100, 1, 1000), offset: pageParam('offset', offset, 0, 0, Number.MAX_SAFE_INTEGER) };
    return (await this.jobs.list(state, page)).map(toJobView);
  }

  @Get(':id')
  @ApiOkResponse({ type: JobView })
  async get(@Param('id') id: string): Promise<JobView> {
    return toJobView(await this.jobs.get(id));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: JobView })
  async cancel(@Param('id') id: string): Promise<JobView> {
    return toJobView(await this.jobs.cancel(id));
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause: the ranks checkpoint and stop; state becomes paused when they have' })
  @ApiOkResponse({ type: JobView })
  async pause(@Param('id') id: string): Promise<JobView> {
    return toJobView(await this.jobs.pause(id));
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Re-queue a paused or failed job; it resumes from its last checkpoint, on another plan if the body gives `parallelism`' })
  @ApiBody({ type: ResumeJobDto, required: false })
  @ApiOkResponse({ type: JobView })
  @ApiBadRequestResponse({ description: 'the new plan does not fit: `fields` names the parallelism field' })
  async resume(@Param('id') id: string, @Body(specValidationPipe()) body: ResumeJobDto): Promise<JobView> {
    return toJobView(await this.jobs.resume(id, body ?? {}));
  }

  @Get(':id/metrics')
  @ApiOperation({ summary: 'Metric entries after `from` (exclusive; 0 or - = from the start); `next` continues' })
  @ApiQuery({ name: 'from', required: false })
  @ApiQuery({ name: 'count', required: false })
  async metrics(@Param('id') id: string, @Query('from') from = '0', @Query('count') count = '1000'): Promise<{ entries: Record<string, unknown>[]; next: string }> {
    await this.jobs.get(id);
    return this.stream.metrics(id, from || '0', Math.max(1, Math.min(10_000, Number(count) || 1000)));
  }

  @Get(':id/logs')
  @ApiOperation({ summary: 'The workers\' log lines of the job (kept in Redis, the newest FLEET_LOG_MAXLEN per job), oldest first; `next` continues' })
  @ApiQuery({ name: 'after', required: false, description: 'lines after this id (exclusive); default 0 = from the oldest kept' })
  @ApiQuery({ name: 'limit', required: false, description: '1..10000, default 1000' })
  @ApiQuery({ name: 'rank', required: false, description: 'only this rank\'s lines' })
  @ApiOkResponse({ type: LogPage })
  @ApiBadRequestResponse({ description: '`message` names the bad parameter (after, limit or rank)' })
  @ApiNotFoundResponse({ description: 'no such job' })
  async logs(@Param('id') id: string, @Query('after') after?: string, @Query('limit') limit?: string, @Query('rank') rank?: string): Promise<LogPage> {
    const q = parseLogQuery({ after, limit, rank });
    await this.jobs.get(id);
    const page = await this.stream.logs(id, q);
    return { lines: page.lines.map((l) => ({ ...l, id: l.id! })), next: page.next };
  }

  @Sse(':id/events')
  @ApiOperation({ summary: 'Server-Sent Events: `event` (job events), `metric` (new metrics), `job` (record changes)' })
  @ApiQuery({ name: 'from', required: false, description: 'events after this id; default 0 (all)' })
  @ApiQuery({ name: 'metricsFrom', required: false, description: 'metrics after this id; default $ (new ones only)' })
  async events(@Param('id') id: string, @Query('from') from = '0', @Query('metricsFrom') metricsFrom = '$'): Promise<Observable<MessageEvent>> {
    await this.jobs.get(id);
    return this.stream.feed(id, from, metricsFrom);
  }
}
