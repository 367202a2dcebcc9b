import { Controller, Delete, Get, HttpCode, Param, Query } from '@nestjs/common';
import { ApiConflictResponse, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiQuery, ApiTags } from '@nestjs/swagger';
import { pageParam } from '../jobs/job-validation';
import type { PeerAddress, WorkerInfo } from '@tensorfleet/control';
import { WorkersService } from './workers.service';

class WorkerView {
  @ApiProperty() id!: string;
  @ApiProperty() host!: string;
  @ApiProperty() pid!: number;
  @ApiProperty({ description: 'tensorflow | wasm | cpu' }) backend!: string;
  @ApiProperty({ description: 'gpu | cpu' }) device!: string;
  @ApiProperty({ enum: ['idle', 'busy'] }) state!: 'idle' | 'busy';
  @ApiProperty({ description: 'Heartbeat key present' }) alive!: boolean;
  @ApiPropertyOptional({ type: String, nullable: true }) jobId!: string | null;
  @ApiPropertyOptional({ type: Number, nullable: true }) rank!: number | null;
  @ApiProperty() registeredAt!: number;
  @ApiProperty() lastSeen!: number;
  @ApiProperty({ description: 'Collective endpoint' }) address!: PeerAddress;
}

@ApiTags('workers')
@Controller('workers')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  @Get()
  @ApiOperation({ summary: 'Registered workers sorted by id; every one, or a page with limit/offset' })
  @ApiQuery({ name: 'limit', required: false, description: 'page size, 1..10000; default: all' })
  @ApiQuery({ name: 'offset', required: false, description: 'workers to skip; default 0' })
  @ApiOkResponse({ type: [WorkerView] })
  list(@Query('limit') limit?: string, @Query('offset') offset?: string): Promise<WorkerInfo[]> {
    const l = pageParam('limit', limit, Number.MAX_SAFE_INTEGER, 1, 10_000);
    return this.workers.list({ limit: l, offset: pageParam('offset', offset, 0, 0, Number.MAX_SAFE_INTEGER) });
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'The lost worker was removed from the registry' })
  @ApiNotFoundResponse({ description: 'No such worker' })
  @ApiConflictResponse({ description: 'The worker is alive: stop its process, which unregisters itself' })
  forget(@Param('id') id: string): Promise<void> {
    return this.workers.forget(id);
  }
}
