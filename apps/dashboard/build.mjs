#!/usr/bin/env node
// Bundles the dashboard (src/main.ts and src/style.css with uPlot's CSS) into dist/public:
// index.html + assets/, the static files the coordinator serves. No CDN: everything the page
// loads comes from this folder. Run by `npm run build`, npm ci's prepare step and run-tests.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const out = join(here, 'dist', 'public');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.ts'), join(here, 'src', 'style.css')],
  outdir: join(out, 'assets'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  tsconfig: join(here, 'tsconfig.json'),
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
console.log(`[dashboard] bundled to ${out}`);
