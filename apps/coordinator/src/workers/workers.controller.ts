import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
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
}
