#!/usr/bin/env node
// Builds the native addons: libs/data/native (the libjpeg-turbo decoder the data loader calls from
// its decode threads) and libs/models/native (the oneDNN kernels of the `onednn` backend).
// Run by the root `prepare` (so by `npm ci`), where a failure only warns: without a compiler or
// the headers the loader decodes with sharp (about three times the CPU per image) and training
// runs on the wasm backend (`fleet bench data` / `fleet bench train` say which ran).
// `--strict` (npm run build:native) fails instead; `--only jpeg|dnnl` builds one of them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const strict = process.argv.includes('--strict');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = join(dirname(process.execPath), '..');

const ADDONS = [
  {
    id: 'jpeg',
    name: 'libjpeg-turbo decoder',
    dir: join(root, 'libs', 'data', 'native'),
    built: 'libs/data/native/build/Release/fleet_jpeg.node',
    hint:
      'The data loader will decode JPEGs with sharp instead (slower). To build the fast decoder, install a C compiler and ' +
      'the libjpeg-turbo headers (Debian/Ubuntu: apt-get install build-essential libjpeg62-turbo-dev; macOS: brew install jpeg-turbo), ' +
      'then run `npm run build:native`.',
  },
  {
    id: 'dnnl',
    name: 'oneDNN kernels',
    dir: join(root, 'libs', 'models', 'native'),
    built: 'libs/models/native/build/Release/fleet_dnnl.node',
    hint:
      'Training on CPU will use the wasm backend instead (slower). To build the onednn backend, install a C++ compiler and ' +
      'oneDNN (Debian/Ubuntu: apt-get install build-essential libdnnl-dev; macOS: brew install onednn), then run `npm run build:native`.',
  },
];

// npm names its bundled node-gyp in lifecycle scripts; outside them, find it beside npm.
const candidates = [process.env.npm_config_node_gyp, join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')];
const gyp = candidates.find((p) => p && existsSync(p) && p.endsWith('.js'));
const args = gyp ? [gyp, 'rebuild'] : null;
// Node's own headers when they are installed with it (Debian, official tarballs): no download.
if (args && !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);

if (only && !ADDONS.some((a) => a.id === only)) {
  console.error(`[build-native] --only ${only}: expected one of ${ADDONS.map((a) => a.id).join(', ')}`);
  process.exit(1);
}
let failed = 0;
for (const addon of ADDONS.filter((a) => !only || a.id === only)) {
  const why = build(addon);
  if (why === null) {
    console.error(`[build-native] ${addon.name} built: ${addon.built}`);
    continue;
  }
  failed++;
  console.error(`[build-native] ${addon.name} not built: ${why}`);
  console.error(`[build-native] ${addon.hint}`);
}
process.exit(strict && failed ? 1 : 0);

/** null when built, else why not. */
function build(addon) {
  if (!args) return 'node-gyp was not found (it comes with npm)';
  const run = spawnSync(process.execPath, args, { cwd: addon.dir, encoding: 'utf8' });
  if (run.status === 0) return null;
  // The compiler's own errors (a missing header, no compiler) say more than node-gyp's stack.
  const out = `${run.stdout ?? ''}${run.stderr ?? ''}`.split('\n').filter((l) => l && !l.startsWith('gyp info'));
  const errors = out.filter((l) => /error|not found/i.test(l) && !l.startsWith('gyp ERR!'));
  return `node-gyp exited with ${run.status ?? run.signal}:\n${(errors.length ? errors.slice(0, 6) : out.slice(-12)).join('\n')}`;
}
