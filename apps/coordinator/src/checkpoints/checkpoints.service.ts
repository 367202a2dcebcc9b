import { BadGatewayException, Injectable, NotFoundException } from '@nestjs/common';
import { checkpointBucket, ControlPlane, type CheckpointView } from '@tensorfleet/control';
import { isNotFound, ObjectStore } from '@tensorfleet/data';
import { listCheckpoints, type CheckpointManifest } from '@tensorfleet/training';
import { mayAccess, type Principal } from '../auth/principal';

export type { CheckpointView };

/**
 * Committed checkpoints of a job: folders `checkpoints/<job>/<step>/` with a manifest
 * whose parts are all there, in spec.checkpoint.bucket (default: the dataset's bucket).
 */
@Injectable()
export class CheckpointsService {
  constructor(private readonly control: ControlPlane, private readonly store: ObjectStore) {}

  async list(jobId: string, who: Principal | null = null): Promise<CheckpointView[]> {
    const job = await this.control.getJob(jobId);
    if (!job || !mayAccess(who, job)) throw new NotFoundException(`no job ${jobId}; GET /jobs lists them`);
    const bucket = checkpointBucket(job.spec);
    let found: CheckpointManifest[];
    try {
      found = await listCheckpoints(this.store, bucket, jobId);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw new BadGatewayException(`object store error listing s3://${bucket}/checkpoints/${jobId}/: ${(e as Error).message}`);
    }
    return found.map((m) => ({
      step: m.step, epoch: m.epoch, key: m.key, bucket, createdAt: m.createdAt,
      bytes: m.parts.reduce((a, p) => a + p.bytes, 0),
    }));
  }
}
