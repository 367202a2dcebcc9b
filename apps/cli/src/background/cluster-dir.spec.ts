import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  clearCurrentDir, currentClusterSettings, defaultClusterDir, readToken, selectedClusterDir, storedTokenFor,
  writeCurrentDir, writeSettings, writeToken, type ClusterSettings,
} from './cluster-dir';
import { s3Config } from './swift-store';

function sandbox() {
  const root = mkdtempSync(join(tmpdir(), 'tf-cluster-dir-'));
  const env = { HOME: join(root, 'home') } as NodeJS.ProcessEnv;
  const dir = join(root, 'cluster');
  const settings: ClusterSettings = {
    dir, coordinatorUrl: 'http://127.0.0.1:4100', redisUrl: 'redis://127.0.0.1:4101', s3: s3Config(4102), prefix: 'tf',
    ports: { coordinator: 4100, redis: 4101, s3: 4102 }, workers: 2, startedAt: new Date(0).toISOString(),
  };
  return { root, env, dir, settings };
}

test('the default folder is under XDG_STATE_HOME when set, else under ~/.tensorfleet', () => {
  assert.equal(defaultClusterDir({ HOME: '/h' }), '/h/.tensorfleet/cluster');
  assert.equal(defaultClusterDir({ HOME: '/h', XDG_STATE_HOME: '/state' }), '/state/tensorfleet/cluster');
});

test('status and down act on --dir, else on the cluster fleet up started last, else on the default', () => {
  const { env, dir } = sandbox();
  assert.equal(selectedClusterDir(undefined, env), defaultClusterDir(env));
  writeCurrentDir(dir, env);
  assert.equal(selectedClusterDir(undefined, env), dir);
  assert.equal(selectedClusterDir('/elsewhere', env), '/elsewhere');
});

test('the token and the settings are readable by their owner only', () => {
  const { dir, settings } = sandbox();
  writeToken(dir, 'a'.repeat(48));
  writeSettings(settings);
  assert.equal(statSync(join(dir, 'api-token')).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'cluster.json')).mode & 0o777, 0o600);
  assert.equal(readToken(dir), 'a'.repeat(48));
});

test('the stored token goes only to the current cluster\'s coordinator, and not once it is down', () => {
  const { env, dir, settings } = sandbox();
  writeToken(dir, 'b'.repeat(48));
  writeSettings(settings);
  assert.equal(storedTokenFor(settings.coordinatorUrl, env), undefined, 'no pointer yet: no current cluster');
  writeCurrentDir(dir, env);
  assert.equal(currentClusterSettings(env)?.redisUrl, settings.redisUrl);
  assert.equal(storedTokenFor(settings.coordinatorUrl, env), 'b'.repeat(48));
  assert.equal(storedTokenFor(`${settings.coordinatorUrl}/`, env), 'b'.repeat(48));
  assert.equal(storedTokenFor('http://coordinator.example:3000', env), undefined);
  assert.equal(storedTokenFor('http://127.0.0.1:4999', env), undefined);
  clearCurrentDir(dir, env);
  assert.equal(currentClusterSettings(env), null);
  assert.equal(storedTokenFor(settings.coordinatorUrl, env), undefined);
});

test('clearing the pointer for another folder leaves it alone', () => {
  const { env, dir } = sandbox();
  writeCurrentDir(dir, env);
  clearCurrentDir('/some/other/cluster', env);
  assert.equal(selectedClusterDir(undefined, env), dir);
});
