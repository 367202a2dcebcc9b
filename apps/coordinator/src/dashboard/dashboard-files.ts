import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface DashboardFile {
  type: string;
  body: Buffer;
}

/**
 * The built dashboard (apps/dashboard/dist/public), read once at start: a few hundred kB.
 * Only files found there are served, so a request path can never leave the folder.
 */
export class DashboardFiles {
  readonly index: DashboardFile | null;
  private readonly assets = new Map<string, DashboardFile>();

  constructor(readonly dir: string) {
    this.index = read(join(dir, 'index.html'));
    const assetDir = join(dir, 'assets');
    let names: string[] = [];
    try { names = readdirSync(assetDir); } catch { /* not built: index is null too */ }
    for (const name of names) {
      const file = read(join(assetDir, name));
      if (file) this.assets.set(name, file);
    }
  }

  asset(name: string): DashboardFile | undefined {
    return this.assets.get(name);
  }
}

function read(path: string): DashboardFile | null {
  try {
    if (!statSync(path).isFile()) return null;
    return { type: TYPES[extname(path)] ?? 'application/octet-stream', body: readFileSync(path) };
  } catch {
    return null;
  }
}
