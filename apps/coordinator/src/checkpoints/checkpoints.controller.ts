import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, type Principal } from '../auth/principal';
import { CheckpointsService, type CheckpointView } from './checkpoints.service';

@ApiTags('checkpoints')
@Controller('jobs/:id/checkpoints')
export class CheckpointsController {
  constructor(private readonly checkpoints: CheckpointsService) {}

  @Get()
  @ApiOperation({ summary: 'Committed checkpoints of a job, oldest first (in spec.checkpoint.bucket, default the dataset bucket)' })
  @ApiOkResponse({ description: '[{ step, epoch, key, bucket, createdAt, bytes }]' })
  list(@Param('id') id: string, @CurrentPrincipal() who: Principal | null): Promise<CheckpointView[]> {
    return this.checkpoints.list(id, who);
  }
}
