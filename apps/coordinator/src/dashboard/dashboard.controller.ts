import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/api-token.guard';
import { DASHBOARD_HTML } from './dashboard.page';

// The page itself holds no data: it is open, and its requests carry the user's token.
@ApiExcludeController()
@Public()
@Controller()
export class DashboardController {
  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-store')
  page(): string {
    return DASHBOARD_HTML;
  }
}
