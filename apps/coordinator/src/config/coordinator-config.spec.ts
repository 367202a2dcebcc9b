import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coordinatorOptionsFromEnv, resolveCoordinatorConfig, tokensFromEnv } from './coordinator-config';

const s3 = { endPoint: '127.0.0.1', port: 9000, useSSL: false, accessKey: 'a', secretKey: 's', region: 'us-east-1' };

test('defaults are merged once and bad values rejected with what to set', () => {
  const c = resolveCoordinatorConfig({ redisUrl: 'redis://127.0.0.1:6379', s3 });
  assert.equal(c.port, 3000);
  assert.equal(c.prefix, 'tf');
  assert.equal(c.queueName, 'tensorfleet-jobs');
  assert.equal(resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, prefix: 'fleet:' }).prefix, 'fleet');
  assert.throws(() => resolveCoordinatorConfig({ redisUrl: 'http://x', s3 }), /REDIS_URL/);
  assert.throws(() => resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, concurrency: 0 }), /concurrency/);
  assert.throws(() => resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, queueName: 'a:b' }), /queueName/);
  assert.equal(c.forgetLostAfterMs, 600_000);
  assert.throws(() => resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, forgetLostAfterMs: 0.5 }), /forgetLostAfterMs/);
  assert.equal(c.lockDurationMs, 30_000);
  assert.throws(() => resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, lockDurationMs: 500 }), /lockDurationMs must be at least 1000 \(env FLEET_LOCK_DURATION_MS\), got 500/);
});

test('environment: S3_* or TF_S3, PORT, FLEET_PREFIX', () => {
  const o = coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1', S3_ENDPOINT: 'http://s3:9000', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', PORT: '0', FLEET_PREFIX: 'x', FLEET_FORGET_LOST_AFTER_MS: '60000' });
  assert.deepEqual([o.redisUrl, o.s3.endPoint, o.s3.port, o.port, o.prefix, o.forgetLostAfterMs], ['redis://r:1', 's3', 9000, 0, 'x', 60_000]);
  const ha = coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1', TF_S3: JSON.stringify(s3), FLEET_LOCK_DURATION_MS: '2000', FLEET_FOLLOW_POLL_MS: '100', FLEET_CLAIM_BACKOFF_MS: '50', FLEET_CLAIM_MAX_BACKOFF_MS: '400' });
  assert.deepEqual([ha.lockDurationMs, ha.followPollMs, ha.claimBackoffMs, ha.claimMaxBackoffMs], [2000, 100, 50, 400]);
  assert.equal(coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1', TF_S3: JSON.stringify(s3) }).lockDurationMs, undefined, 'unset: the default');
  const j = coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1', TF_S3: JSON.stringify(s3) });
  assert.deepEqual(j.s3, s3);
  assert.throws(() => coordinatorOptionsFromEnv({ S3_ENDPOINT: 'http://s3:9000' }), /REDIS_URL/);
  assert.throws(() => coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1' }), /S3_ENDPOINT/);
  assert.throws(() => coordinatorOptionsFromEnv({ REDIS_URL: 'redis://r:1', TF_S3: '{' }), /TF_S3/);
});

test('FLEET_API_TOKEN entries: bare tokens as before, or name:token:role:scope|scope', () => {
  const tok = 'a'.repeat(24);
  assert.deepEqual(tokensFromEnv(`${tok}, ${tok}b`, 'write'), [{ token: tok, access: 'write' }, { token: `${tok}b`, access: 'write' }]);
  assert.deepEqual(tokensFromEnv(`team-a:${tok}:write:data/team-a/*|scratch`, 'write'), [{ token: tok, name: 'team-a', access: 'write', scopes: ['data/team-a/*', 'scratch'] }]);
  assert.deepEqual(tokensFromEnv(`team-a:${tok}`, 'read'), [{ token: tok, name: 'team-a', access: 'read' }]);
  assert.deepEqual(tokensFromEnv(`dash:${tok}:read`, 'write'), [{ token: tok, name: 'dash', access: 'read' }]);
  assert.throws(() => tokensFromEnv(`a:${tok}:admin`, 'write'), /role must be "write" or "read"/);
  assert.throws(() => tokensFromEnv(`a:${tok}:write`, 'read'), /belongs in FLEET_API_TOKEN/);
  assert.throws(() => tokensFromEnv('a:', 'write'), /name:token/);
  const cfg = (apiTokens: object[]) => () => resolveCoordinatorConfig({ redisUrl: 'redis://x', s3, apiTokens: apiTokens as never });
  assert.throws(cfg([{ token: tok, access: 'write', scopes: ['data/x'] }]), /apiTokens\[0\]\.name is needed/);
  assert.throws(cfg([{ token: tok, access: 'write', name: 'a', scopes: ['data/../x'] }]), /apiTokens\[0\]\.scopes\[0\]/);
  assert.throws(cfg([{ token: tok, access: 'write', name: 'a b' }]), /apiTokens\[0\]\.name/);
  assert.throws(cfg([{ token: tok, access: 'write' }, { token: tok, access: 'read' }]), /twice/);
  assert.equal(cfg([{ token: tok, access: 'write', name: 'a', scopes: ['data/a*'] }])().apiTokens[0].scopes![0], 'data/a*');
});
