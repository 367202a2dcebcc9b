import { AllReduceManyOptions, Communicator } from './types';

/** As PyTorch DDP's bucket_cap_mb. */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** Consecutive tensors grouped so that each bucket holds at most `bucketBytes` (a larger tensor is alone). */
export function planBuckets(lengths: number[], bucketBytes: number): number[][] {
  const buckets: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  lengths.forEach((len, i) => {
    if (cur.length && bytes + len * 4 > bucketBytes) {
      buckets.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(i);
    bytes += len * 4;
  });
  if (cur.length) buckets.push(cur);
  return buckets;
}

/**
 * Tensor fusion: small tensors are packed into buckets so they share one ring pass. All the
 * buckets' all-reduces are issued at once (sequence numbers are taken in order, the same on
 * every rank), so packing and unpacking overlap with the transfers of other buckets.
 */
export async function allReduceMany(c: Pick<Communicator, 'allReduce'>, bufs: Float32Array[], opts: AllReduceManyOptions): Promise<Float32Array[]> {
  const bucketBytes = opts.bucketBytes ?? DEFAULT_BUCKET_BYTES;
  if (!(bucketBytes > 0)) throw new RangeError(`bucketBytes must be > 0, got ${bucketBytes}`);
  const { bucketBytes: _omit, ...one } = opts;
  const jobs = planBuckets(
    bufs.map((b) => b.length),
    bucketBytes,
  ).map(async (idx) => {
    if (idx.length === 1) return c.allReduce(bufs[idx[0]], one); // in place, no packing
    const total = idx.reduce((a, i) => a + bufs[i].length, 0);
    const packed = new Float32Array(total);
    let o = 0;
    for (const i of idx) {
      packed.set(bufs[i], o);
      o += bufs[i].length;
    }
    await c.allReduce(packed, one);
    o = 0;
    for (const i of idx) {
      bufs[i].set(packed.subarray(o, o + bufs[i].length));
      o += bufs[i].length;
    }
    return packed;
  });
  await Promise.all(jobs);
  return bufs;
}
