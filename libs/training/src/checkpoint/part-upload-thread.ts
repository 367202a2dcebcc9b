import { createHash } from 'node:crypto';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { ObjectStore, type S3Config } from '@tensorfleet/data';
import type { PartUploadReply } from './part-upload';

// One checkpoint attempt's parts: put each, hash each, reply once. In a thread of its own so the
// upload's JavaScript (HTTP, signing, sha256) runs while the training thread is busy in a step.
const { cfg, bucket, items } = workerData as { cfg: S3Config; bucket: string; items: { key: string; body: Uint8Array }[] };
// Lowest priority for this thread alone (Linux: pid 0 is the calling thread), so that on a
// machine whose cores all train, the upload takes what the step leaves over. Best effort.
try {
  setPriority(0, 19);
} catch {
  // not permitted here: the upload runs at normal priority
}
const store = new ObjectStore(cfg);
const reply = (m: PartUploadReply) => parentPort!.postMessage(m);

Promise.all(items.map(async ({ key, body }) => {
  await store.putObject(bucket, key, body);
  return createHash('sha256').update(body).digest('hex');
})).then(
  (sha256) => reply({ sha256 }),
  (err: Error & { code?: string }) => reply({ error: err?.message ?? String(err), code: err?.code }),
);
