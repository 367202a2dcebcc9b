import { existsSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import { ModelIoError } from './errors';

/**
 * `p` as a path inside folder `base`, every symbolic link followed, or a ModelIoError
 * (`OUTSIDE_BASE`) naming `field`. A relative `p` is relative to `base`. `p` need not exist
 * (an export's output folder): then its nearest existing ancestor must be inside `base`, and
 * what follows it is created fresh, so no link can lead elsewhere. Returns the real path.
 */
export function confinedPath(base: string, p: string, field: string): string {
  let root: string;
  try {
    root = realpathSync(base);
  } catch (e) {
    throw new ModelIoError('NOT_FOUND', `${field}: the base folder ${base} does not exist (${(e as NodeJS.ErrnoException).code})`);
  }
  // ".." is refused as written, before any resolution: it says the intent to leave.
  if (p.split(/[\\/]/).includes('..')) throw new ModelIoError('OUTSIDE_BASE', `${field}: ${p} must not contain ".." segments`);
  let existing = path.resolve(root, p);
  const rest: string[] = [];
  while (!existsSync(existing)) {
    rest.unshift(path.basename(existing));
    const up = path.dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  const real = path.join(realpathSync(existing), ...rest);
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new ModelIoError('OUTSIDE_BASE', `${field}: ${p} is ${real}, outside ${root}${real === path.resolve(root, p) ? '' : ' (through a symbolic link)'}`);
  }
  return real;
}
