import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { confinedPath } from './confined-path';
import { ModelIoError } from './errors';

const top = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'confined-')));
const base = path.join(top, 'models');
const outside = path.join(top, 'secret');
mkdirSync(path.join(base, 'resnet', 'v1'), { recursive: true });
mkdirSync(outside);
symlinkSync(outside, path.join(base, 'escape'));
symlinkSync(path.join(base, 'resnet'), path.join(base, 'alias'));
after(() => rmSync(top, { recursive: true, force: true }));

const refused = (p: string, why: RegExp) => assert.throws(() => confinedPath(base, p, '<model>'), (e: unknown) => e instanceof ModelIoError && e.code === 'OUTSIDE_BASE' && why.test(e.message) && /^<model>: /.test(e.message));

test('folders inside the base (relative to it, absolute, through links that stay inside, not yet created) pass as their real path', () => {
  assert.equal(confinedPath(base, 'resnet/v1', '<model>'), path.join(base, 'resnet', 'v1'));
  assert.equal(confinedPath(base, path.join(base, 'resnet'), '<model>'), path.join(base, 'resnet'));
  assert.equal(confinedPath(base, 'alias/v1', '<model>'), path.join(base, 'resnet', 'v1'));
  assert.equal(confinedPath(base, 'new/out', '--out'), path.join(base, 'new', 'out'));
  assert.equal(confinedPath(base, '.', '<model>'), base);
});

test('"..", absolute paths elsewhere and links out of the base are refused, naming the field', () => {
  refused('../secret', /must not contain "\.\." segments/);
  refused('resnet/../../secret', /"\.\."/);
  refused(outside, /outside/);
  refused('escape', /through a symbolic link/);
  refused('escape/new-folder', /through a symbolic link/);
  assert.throws(() => confinedPath(path.join(top, 'nope'), 'x', '--out'), (e: unknown) => e instanceof ModelIoError && e.code === 'NOT_FOUND');
});
