#!/usr/bin/env node
// Builds libs/data/native, the libjpeg-turbo decoder the data loader calls from its decode threads.
// Run by the root `prepare` (so by `npm ci`), where a failure only warns: without a C compiler or
// the libjpeg-turbo headers the loader decodes with sharp (about three times the CPU per image)
// and `fleet bench data` says which decoder ran. `--strict` (npm run build:native) fails instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const strict = process.argv.includes('--strict');
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'libs', 'data', 'native');
const prefix = join(dirname(process.execPath), '..');

// npm names its bundled node-gyp in lifecycle scripts; outside them, find it beside npm.
const candidates = [process.env.npm_config_node_gyp, join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
const gyp = candidates.find((p) => p && existsSync(p) && p.endsWith('.js'));
const args = gyp ? [gyp, 'rebuild'] : null;
// Node's own headers when they are installed with it (Debian, official tarballs): no download.
if (args && !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

const hint =
  'The data loader will decode JPEGs with sharp instead (slower). To build the fast decoder, install a C compiler and ' +
  'the libjpeg-turbo headers (Debian/Ubuntu: apt-get install build-essential libjpeg62-turbo-dev; macOS: brew install jpeg-turbo), ' +
  'then run `npm run build:native`.';

function fail(why) {
  console.error(`[build-native] libjpeg-turbo decoder not built: ${why}`);
  console.error(`[build-native] ${hint}`);
  process.exit(strict ? 1 : 0);
}

if (!args) fail('node-gyp was not found (it comes with npm)');
const run = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
if (run.status !== 0) {
  // The compiler's own errors (a missing header, no compiler) say more than node-gyp's stack.
  const out = `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n').filter((l) => l && !l.startsWith('gyp info'));
  const errors = out.filter((l) => /error|not found/i.test(l) && !l.startsWith('gyp ERR!'));
  fail(`node-gyp exited with ${run.status ?? run.signal}:\n${(errors.length ? errors.slice(0, 6) : out.slice(-12)).join('\n')}`);
}
console.error('[build-native] libjpeg-turbo decoder built: libs/data/native/build/Release/fleet_jpeg.node');
