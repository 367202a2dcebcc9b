import { Controller, Delete, Get, HttpCode, Param } from '@nestjs/common';
import { ApiConflictResponse, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
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
  @ApiOkResponse({ type: [WorkerView] })
  list(): Promise<WorkerInfo[]> {
    return this.workers.list();
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
