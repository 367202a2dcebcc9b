// The dependency direction of DESIGN.md (apps -> libs; training -> models, data,
// collective; models, data and collective import none of each other) is enforced by the
// Nx module-boundary lint rule. That rule silently skips itself when Nx has no project
// graph, so this test checks that it really fires on forbidden imports and not on allowed ones.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..', '..');

describe('module boundaries', () => {
  let lint: (file: string, code: string) => Promise<string[]>;

  before(async () => {
    execFileSync('npx', ['nx', 'show', 'projects'], { cwd: root, env: { ...process.env, NX_DAEMON: 'false' }, stdio: 'ignore' });
    // eslint is ESM-first; load it through a dynamic import that tsc leaves alone.
    const { ESLint } = await (new Function('m', 'return import(m)'))('eslint');
    const eslint = new ESLint({ cwd: root });
    lint = async (file, code) => {
      const [r] = await eslint.lintText(code, { filePath: join(root, file) });
      return r.messages.filter((m: any) => m.ruleId === '@nx/enforce-module-boundaries').map((m: any) => m.message);
    };
  });

  const forbidden: [string, string][] = [
    ['libs/data/src/probe.ts', '@tensorfleet/models'],
    ['libs/models/src/probe.ts', '@tensorfleet/collective'],
    ['libs/collective/src/probe.ts', '@tensorfleet/data'],
    ['libs/training/src/probe.ts', '@tensorfleet/worker'],
  ];
  for (const [file, dep] of forbidden) {
    it(`forbids ${file.split('/')[1]} -> ${dep}`, async () => {
      const messages = await lint(file, `import * as x from '${dep}';\nexport const y = x;\n`);
      assert.ok(messages.length > 0, `${file} may import ${dep}, which the design forbids`);
    });
  }

  const allowed: [string, string][] = [
    ['libs/training/src/probe.ts', '@tensorfleet/models'],
    ['libs/training/src/probe.ts', '@tensorfleet/collective'],
    ['apps/worker/src/probe.ts', '@tensorfleet/training'],
  ];
  for (const [file, dep] of allowed) {
    it(`allows ${file.split('/')[1]} -> ${dep}`, async () => {
      assert.deepEqual(await lint(file, `import * as x from '${dep}';\nexport const y = x;\n`), []);
    });
  }
});
