import { Controller, Get, NotFoundException, Param, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/api-token.guard';
import { DashboardFiles, type DashboardFile } from './dashboard-files';

/** The part of express' response used here (the coordinator runs on @nestjs/platform-express). */
interface Response {
  setHeader(name: string, value: string): void;
  send(body: Buffer): void;
}

// The page and its scripts hold no data: they are open, and the page's requests carry the user's token.
@ApiExcludeController()
@Public()
@Controller()
export class DashboardController {
  constructor(private readonly files: DashboardFiles) {}

  @Get()
  page(@Res() res: Response): void {
    if (!this.files.index) {
      throw new ServiceUnavailableException(`the dashboard is not built (no ${this.files.dir}/index.html): run \`npm run build\``);
    }
    send(res, this.files.index, 'no-store');
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() res: Response): void {
    const file = this.files.asset(name);
    if (!file) throw new NotFoundException(`no dashboard asset ${name}`);
    // Not content-hashed names: revalidate, so a rebuilt coordinator never serves a stale script.
    send(res, file, 'no-cache');
  }
}

function send(res: Response, file: DashboardFile, cache: string): void {
  res.setHeader('content-type', file.type);
  res.setHeader('cache-control', cache);
  res.send(file.body);
}
