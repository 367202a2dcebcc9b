import { Body, Controller, Get, HttpCode, Param, Post, Query, Sse, type MessageEvent } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiForbiddenResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { JOB_STATES, jobSpecSchema, pauseJobSchema, resumeJobSchema, toJobView, type JobSpecInput, type JobState, type JobView, type LogPageView, type PauseJobInput, type ResumeJobInput } from '@tensorfleet/control';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { JobViewDoc } from './dto/job-view';
import { LogPageDoc, parseLogQuery } from './dto/log-page';
import { JobStreamService } from './job-stream.service';
import { pageParam, schemaPipe } from './job-validation';
import { JobsService } from './jobs.service';

// The request schemas are @tensorfleet/control's, added to the document's components by bootstrap.ts.
const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });

@ApiTags('jobs')
@Controller('jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService, private readonly stream: JobStreamService) {}

  @Post()
  @ApiOperation({ summary: 'Submit a training job' })
  @ApiBody({ schema: schemaRef(jobSpecSchema.def.name!) })
  @ApiOkResponse({ type: JobViewDoc })
  @ApiBadRequestResponse({ description: '`message`: ["field: problem"], `fields`: dotted names (e.g. optimizer.lr, model.name, dataset)' })
  @ApiForbiddenResponse({ description: 'a read-only token, or a scoped token naming paths outside its scopes: `fields` names them (dataset.prefix, checkpoint.bucket)' })
  async submit(@Body(schemaPipe(jobSpecSchema)) input: JobSpecInput, @CurrentPrincipal() who: Principal | null): Promise<JobView> {
    return toJobView(await this.jobs.submit(input, who));
  }

  @Get()
  @ApiOperation({ summary: 'Jobs, newest first, one page at a time (a page shorter than `limit` is the last)' })
  @ApiQuery({ name: 'state', required: false, enum: [...JOB_STATES] })
  @ApiQuery({ name: 'limit', required: false, description: 'page size, 1..1000; default 100' })
  @ApiQuery({ name: 'offset', required: false, description: 'jobs to skip; default 0' })
  @ApiOkResponse({ type: [JobViewDoc], description: 'A scoped token sees only the jobs of its name' })
  async list(@CurrentPrincipal() who: Principal | null, @Query('state') state?: JobState, @Query('limit') limit?: string, @Query('offset') offset?: string): Promise<JobView[]> {
    const page = { limit: pageParam('limit', limit, 100, 1, 1000), offset: pageParam('offset', offset, 0, 0, Number.MAX_SAFE_INTEGER) };
    return (await this.jobs.list(state, page, who)).map(toJobView);
  }

  @Get(':id')
  @ApiOkResponse({ type: JobViewDoc })
  @ApiNotFoundResponse({ description: 'no such job, or another name\'s job for a scoped token' })
  async get(@Param('id') id: string, @CurrentPrincipal() who: Principal | null): Promise<JobView> {
    return toJobView(await this.jobs.get(id, who));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: JobViewDoc })
  async cancel(@Param('id') id: string, @CurrentPrincipal() who: Principal | null): Promise<JobView> {
    return toJobView(await this.jobs.cancel(id, who));
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause: the ranks checkpoint and stop (after the step under way, or after `atStep`); state becomes paused when they have' })
  @ApiBody({ schema: schemaRef(pauseJobSchema.def.name!), required: false })
  @ApiOkResponse({ type: JobViewDoc })
  @ApiBadRequestResponse({ description: '`atStep` is not after the job\'s step or not before its end: `fields` is ["atStep"]' })
  async pause(@Param('id') id: string, @Body(schemaPipe(pauseJobSchema, { optional: true })) body: PauseJobInput, @CurrentPrincipal() who: Principal | null): Promise<JobView> {
    return toJobView(await this.jobs.pause(id, who, body ?? {}));
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Re-queue a paused or failed job; it resumes from its last checkpoint, on another plan if the body gives `parallelism`' })
  @ApiBody({ schema: schemaRef(resumeJobSchema.def.name!), required: false })
  @ApiOkResponse({ type: JobViewDoc })
  @ApiBadRequestResponse({ description: 'the new plan does not fit: `fields` names the parallelism field' })
  async resume(@Param('id') id: string, @Body(schemaPipe(resumeJobSchema, { optional: true })) body: ResumeJobInput, @CurrentPrincipal() who: Principal | null): Promise<JobView> {
    return toJobView(await this.jobs.resume(id, body, who));
  }

  @Get(':id/metrics')
  @ApiOperation({ summary: 'Metric entries after `from` (exclusive; 0 or - = from the start); `next` continues' })
  @ApiQuery({ name: 'from', required: false })
  @ApiQuery({ name: 'count', required: false })
  async metrics(@Param('id') id: string, @CurrentPrincipal() who: Principal | null, @Query('from') from = '0', @Query('count') count = '1000'): Promise<{ entries: Record<string, unknown>[]; next: string }> {
    await this.jobs.get(id, who);
    return this.stream.metrics(id, from || '0', Math.max(1, Math.min(10_000, Number(count) || 1000)));
  }

  @Get(':id/logs')
  @ApiOperation({ summary: 'The workers\' log lines of the job (kept in Redis, the newest FLEET_LOG_MAXLEN per job), oldest first; `next` continues' })
  @ApiQuery({ name: 'after', required: false, description: 'lines after this id (exclusive); default 0 = from the oldest kept' })
  @ApiQuery({ name: 'limit', required: false, description: '1..10000, default 1000' })
  @ApiQuery({ name: 'rank', required: false, description: 'only this rank\'s lines' })
  @ApiOkResponse({ type: LogPageDoc })
  @ApiBadRequestResponse({ description: '`message` names the bad parameter (after, limit or rank)' })
  @ApiNotFoundResponse({ description: 'no such job' })
  async logs(@Param('id') id: string, @CurrentPrincipal() who: Principal | null, @Query('after') after?: string, @Query('limit') limit?: string, @Query('rank') rank?: string): Promise<LogPageView> {
    const q = parseLogQuery({ after, limit, rank });
    await this.jobs.get(id, who);
    const page = await this.stream.logs(id, q);
    return { lines: page.lines.map((l) => ({ ...l, id: l.id! })), next: page.next };
  }

  @Sse(':id/events')
  @ApiOperation({ summary: 'Server-Sent Events: `event` (job events), `metric` (new metrics), `job` (record changes)' })
  @ApiQuery({ name: 'from', required: false, description: 'events after this id; default 0 (all)' })
  @ApiQuery({ name: 'metricsFrom', required: false, description: 'metrics after this id; default $ (new ones only)' })
  async events(@Param('id') id: string, @CurrentPrincipal() who: Principal | null, @Query('from') from = '0', @Query('metricsFrom') metricsFrom = '$'): Promise<Observable<MessageEvent>> {
    await this.jobs.get(id, who);
    return this.stream.feed(id, from, metricsFrom);
  }
}
