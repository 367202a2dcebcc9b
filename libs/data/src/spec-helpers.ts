// Shared by the specs only (never imported by the library): a store on the test S3 and a fresh bucket.
import { testServices, testId } from '@tensorfleet/infra';
import { ObjectStore } from './store/object-store';

export async function testStore(label: string): Promise<{ store: ObjectStore; bucket: string; cleanup(): Promise<void> }> {
  const { s3 } = await testServices();
  const store = new ObjectStore(s3);
  const bucket = testId(`data-${label}`);
  await store.ensureBucket(bucket);
  return { store, bucket, cleanup: () => store.removeAll(bucket) };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/**
 * torchvision's resize with antialias=True (PIL's BILINEAR), written out independently of
 * loader/resize.ts: each output is one 2-D weighted sum (no separable passes) in float64 of a
 * triangle filter whose support widens by the reduction factor, pixel centres at +0.5, weights
 * normalised. Returns ow × oh × 3 values in the source's units.
 */
export function antialiasedBilinear(src: (x: number, y: number, c: number) => number, w: number, h: number, ow: number, oh: number): Float64Array {
  const weights = (inSize: number, outSize: number) => Array.from({ length: outSize }, (_, o) => {
    const scale = inSize / outSize;
    const support = Math.max(scale, 1);
    const centre = (o + 0.5) * scale;
    const lo = Math.max(Math.floor(centre - support + 0.5), 0);
    const hi = Math.min(Math.floor(centre + support + 0.5), inSize);
    const ws = Array.from({ length: hi - lo }, (_, k) => Math.max(0, 1 - Math.abs((lo + k - centre + 0.5) / support)));
    const sum = ws.reduce((a, b) => a + b, 0);
    return { lo, ws: ws.map((v) => v / sum) };
  });
  const wx = weights(w, ow);
  const wy = weights(h, oh);
  const out = new Float64Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) for (let c = 0; c < 3; c++) {
    let acc = 0;
    wy[y].ws.forEach((a, j) => wx[x].ws.forEach((b, i) => (acc += a * b * src(wx[x].lo + i, wy[y].lo + j, c))));
    out[(y * ow + x) * 3 + c] = acc;
  }
  return out;
}
