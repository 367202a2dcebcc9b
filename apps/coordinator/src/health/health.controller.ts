import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/api-token.guard';
import { HealthService, type Readiness } from './health.service';

/** Kubernetes probes: liveness asks only whether the process serves HTTP; readiness whether Redis and S3 answer. */
@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get('healthz')
  @ApiOkResponse({ description: 'The process lives and serves HTTP; touches no dependency, so a Redis outage never restarts it' })
  live(): { ok: true } {
    return { ok: true };
  }

  @Get('readyz')
  @ApiOkResponse({ description: 'Redis and S3 both answered' })
  @ApiServiceUnavailableResponse({ description: 'Redis or S3 did not answer; the body says which and why' })
  async ready(): Promise<Readiness> {
    const readiness = await this.health.readiness();
    // The exception's body is the readiness itself, so a 503 still says which dependency failed.
    if (!readiness.ready) throw new ServiceUnavailableException(readiness);
    return readiness;
  }
}
