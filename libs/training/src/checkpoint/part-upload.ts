import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { S3Config } from '@tensorfleet/data';
import { checkPartFile, checkpointKey, type CheckpointPart, type CheckpointPartKind } from './checkpoint';

export type PartUploadReply = { sha256: string[] } | { error: string; code?: string };

/**
 * writeCheckpointPart for several parts at once, in a worker thread with its own S3 client:
 * the bodies' memory moves to the thread (do not use them afterwards) and the calling thread
 * only waits for the reply. Returns the manifest entries, in order.
 */
export function writeCheckpointPartsInThread(
  cfg: S3Config, bucket: string, jobId: string, step: number,
  parts: { file: string; kind: CheckpointPartKind; body: Uint8Array; tensors?: string[] }[],
): Promise<CheckpointPart[]> {
  for (const p of parts) checkPartFile(p.file);
  const folder = checkpointKey(jobId, step);
  const bytes = parts.map((p) => p.body.byteLength);
  // Whole, distinct ArrayBuffers move without a copy; anything else (a slice of a pool) is cloned.
  const movable = [...new Set(parts.map((p) => p.body.buffer))].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer
    && parts.filter((p) => p.body.buffer === b).every((p) => p.body.byteOffset === 0 && p.body.byteLength === b.byteLength));
  return new Promise((resolve, reject) => {
    const thread = new Worker(join(__dirname, 'part-upload-thread.js'), {
      workerData: { cfg, bucket, items: parts.map((p) => ({ key: `${folder}/${p.file}`, body: p.body })) },
      transferList: movable,
    });
    let settled = false;
    thread.once('message', (m: PartUploadReply) => {
      settled = true;
      void thread.terminate();
      if ('error' in m) return reject(Object.assign(new Error(m.error), { code: m.code }));
      resolve(parts.map((p, i) => ({ file: p.file, kind: p.kind, bytes: bytes[i], sha256: m.sha256[i], ...(p.tensors ? { tensors: p.tensors } : {}) })));
    });
    thread.once('error', (err) => {
      settled = true;
      reject(err);
    });
    thread.once('exit', (code) => {
      if (!settled) reject(new Error(`the checkpoint upload thread exited (code ${code}) before it replied`));
    });
  });
}
