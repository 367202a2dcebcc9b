import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { JobMember, JobRestart, JobSpec, JobState, JobView, RankLayout } from '@tensorfleet/control';
import { JOB_STATES } from '@tensorfleet/control';

/**
 * The OpenAPI description of @tensorfleet/control's JobView (what the handlers return and the
 * clients read); `implements` makes the compiler check that the two agree.
 */
export class JobViewDoc implements JobView {
  @ApiProperty() id!: string;
  @ApiPropertyOptional() name?: string;
  @ApiProperty({ enum: [...JOB_STATES] }) state!: JobState;
  @ApiProperty() createdAt!: number;
  @ApiPropertyOptional() startedAt?: number;
  @ApiPropertyOptional() finishedAt?: number;
  @ApiPropertyOptional() step?: number;
  @ApiPropertyOptional() totalSteps?: number;
  @ApiPropertyOptional({ description: 'step / totalSteps, 0..1' }) progress?: number;
  @ApiPropertyOptional() epoch?: number;
  @ApiPropertyOptional() loss?: number;
  @ApiPropertyOptional() accuracy?: number;
  @ApiPropertyOptional() evalLoss?: number;
  @ApiPropertyOptional() evalAccuracy?: number;
  @ApiPropertyOptional() imagesPerSec?: number;
  @ApiPropertyOptional({ description: 'Rank 0\'s last step rate' }) stepsPerSec?: number;
  @ApiPropertyOptional() error?: string;
  @ApiPropertyOptional({ description: 'checkpoints/<job>/<step>' }) lastCheckpoint?: string;
  @ApiPropertyOptional({ description: 'When lastCheckpoint was committed, ms since the epoch' }) lastCheckpointAt?: number;
  @ApiPropertyOptional({ description: 'Rank → worker of the current run' }) members?: JobMember[];
  @ApiProperty() membershipEpoch!: number;
  @ApiPropertyOptional() runId?: string;
  @ApiPropertyOptional({ description: 'Set while a pause is being carried out' }) pauseRequested?: number;
  @ApiPropertyOptional({ description: 'POST /jobs/:id/pause atStep: the run pauses after this step' }) pauseAtStep?: number;
  @ApiProperty() attempt!: number;
  @ApiPropertyOptional({ description: 'Automatic restarts after a lost worker: { at, cause, worker, fromStep, lostSteps, stepReached, resumedFrom (memory | checkpoint | start) }' }) restarts?: JobRestart[];
  @ApiPropertyOptional({ description: 'Which worker holds which replica and stage, with its parameters and bytes' }) layout?: RankLayout[];
  @ApiPropertyOptional({ description: 'Token name of the submitter (scoped tokens see only their own jobs)' }) owner?: string;
  @ApiProperty({ allOf: [{ $ref: '#/components/schemas/JobSpec' }], description: 'The validated spec with every default filled in' }) spec!: JobSpec;
}
