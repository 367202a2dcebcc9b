import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { MetricsService } from './metrics.service';

@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOperation({ summary: 'Prometheus scrape; with API tokens configured it needs one (a FLEET_API_READ_TOKEN suffices)' })
  @ApiOkResponse({ description: 'Prometheus text format: jobs by state, workers, queue, and per active job step, throughput, loss, restarts, checkpoint age' })
  render(): Promise<string> {
    return this.metrics.render();
  }
}
