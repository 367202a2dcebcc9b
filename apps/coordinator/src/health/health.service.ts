import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { ObjectStore } from '@tensorfleet/data';
import { REDIS } from '../core/core.module';

export interface DependencyCheck {
  ok: boolean;
  ms: number;
  /** Why it failed and what to look at; absent when ok. */
  error?: string;
}

export interface Readiness {
  ready: boolean;
  redis: DependencyCheck;
  s3: DependencyCheck;
}

/** A probe longer than this counts as down: Kubernetes' own probe timeout defaults to 1 s. */
const CHECK_TIMEOUT_MS = 800;

/** Whether the services the coordinator cannot work without answer right now. */
@Injectable()
export class HealthService {
  constructor(@Inject(REDIS) private readonly redis: Redis, private readonly store: ObjectStore) {}

  async readiness(): Promise<Readiness> {
    const [redis, s3] = await Promise.all([
      check('Redis', async () => { await this.redis.ping(); }),
      // listBuckets is the cheapest call that needs both a reachable S3 and valid credentials.
      check('S3', async () => { await this.store.client.listBuckets(); }),
    ]);
    return { ready: redis.ok && s3.ok, redis, s3 };
  }
}

async function check(name: string, probe: () => Promise<void>): Promise<DependencyCheck> {
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([probe(), timeout]);
    return { ok: true, ms: Date.now() - start };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, ms: Date.now() - start, error: `${name} did not answer (${why}): check that it runs and the coordinator's ${name === 'S3' ? 'S3 settings' : 'REDIS_URL'} point at it` };
  } finally {
    clearTimeout(timer);
  }
}
