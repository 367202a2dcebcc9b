#!/usr/bin/env node
// The one test command: builds the workspace, starts a private Redis and a private
// Swift (S3) for this run, then runs every unit spec (`**/src/**/*.spec.ts`, compiled to
// dist) and every cross-process test (`test/src/**/*.test.ts`) with node's test runner.
// Tests read TF_TEST_REDIS_URL / TF_TEST_S3 to reach the shared private services and give
// every test its own key prefix and bucket, so nothing is shared between runs.
//   node scripts/run-tests.mjs [--project DIR] [--unit] [--e2e] [filter...]
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const project = args.includes('--project') ? args[args.indexOf('--project') + 1] : null;
const onlyUnit = args.includes('--unit');
const onlyE2e = args.includes('--e2e');
const filters = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--project');

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

console.log('[test] building the workspace (tsc -b)');
const build = spawnSync('npx', ['tsc', '-b', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
console.log('[test] bundling the dashboard (esbuild)');
const bundle = spawnSync(process.execPath, ['apps/dashboard/build.mjs'], { cwd: root, stdio: 'inherit' });
if (bundle.status !== 0) process.exit(bundle.status ?? 1);

const roots = project ? [project] : ['libs', 'apps', 'infra', 'test'];
const files = roots.flatMap((r) => walk(join(root, r)))
  .filter((f) => f.includes('/dist/'))
  .filter((f) => (f.endsWith('.spec.js') && !onlyE2e) || (f.endsWith('.test.js') && !onlyUnit))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort((a, b) => Number(a.endsWith('.test.js')) - Number(b.endsWith('.test.js')) || a.localeCompare(b));
if (files.length === 0) {
  console.error('[test] no test files matched');
  process.exit(1);
}

const { startRedis, startSwift } = await import(join(root, 'infra/dist/index.js'));
console.log('[test] starting a private redis-server and a private Swift S3 for this run');
const redis = await startRedis({ label: 'test' });
const swift = await startSwift({ label: 'test' });
const env = {
  ...process.env,
  TF_TEST_REDIS_URL: redis.url,
  TF_TEST_S3: JSON.stringify(swift.config),
};
let code = 1;
try {
  console.log(`[test] ${files.length} files`);
  const child = spawn(process.execPath, [
    // A hung test fails after 20 minutes (none takes more than a few) instead of eating CI's 90.
    '--test', '--test-concurrency=1', '--test-timeout=1200000', '--enable-source-maps',
    ...files.map((f) => relative(root, f)),
  ], { cwd: root, env, stdio: 'inherit' });
  code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
} finally {
  await swift.stop();
  await redis.stop();
}
process.exit(code);
