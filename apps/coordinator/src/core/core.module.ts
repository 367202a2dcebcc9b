import { Global, Inject, Injectable, Logger, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { ControlPlane, openRedis, waitForRedis } from '@tensorfleet/control';
import { ObjectStore } from '@tensorfleet/data';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';
import { JobStateIndex } from './job-state-index';
import { ModelCatalog } from './model-catalog';

export const REDIS = Symbol('REDIS');

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}
  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** What every domain module uses: config, the Redis connection, the control plane, S3, the model registry. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: CoordinatorConfig): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: COORDINATOR_CONFIG, useValue: config },
        {
          provide: REDIS,
          // Start-up waits for Redis (as it always did), but a wrong password or CA fails it, saying what to set.
          useFactory: async () => {
            const redis = openRedis(config.redisUrl, config.redisTls, 'main', (l) => new Logger('Redis').warn(l), { maxRetriesPerRequest: null });
            try {
              await waitForRedis(redis, config.redisUrl);
            } catch (e) {
              redis.disconnect();
              throw e;
            }
            return redis;
          },
        },
        RedisCloser,
        { provide: ControlPlane, inject: [REDIS], useFactory: (redis: Redis) => new ControlPlane(redis, { prefix: config.prefix }) },
        { provide: ObjectStore, useFactory: () => new ObjectStore(config.s3) },
        ModelCatalog,
        JobStateIndex,
      ],
      exports: [COORDINATOR_CONFIG, REDIS, ControlPlane, ObjectStore, ModelCatalog],
    };
  }
}
