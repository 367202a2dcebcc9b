// A Swift started again on its folder serves the objects it held (what `fleet up` relies on
// to find datasets and checkpoints after `fleet down`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as Minio from 'minio';
import { startSwift } from './index';

test('a Swift restarted on the same folder (and another port) still has its buckets and objects', { timeout: 5 * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-swift-restart-'));
  try {
    const first = await startSwift({ dir });
    const s3 = new Minio.Client({ ...first.config, pathStyle: true });
    await s3.makeBucket('kept');
    await s3.putObject('kept', 'a/b.txt', Buffer.from('still here'));
    await first.stop();

    const second = await startSwift({ dir });
    try {
      const again = new Minio.Client({ ...second.config, pathStyle: true });
      assert.deepEqual((await again.listBuckets()).map((b) => b.name), ['kept']);
      const chunks: Buffer[] = [];
      for await (const c of await again.getObject('kept', 'a/b.txt')) chunks.push(c as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'still here');
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
