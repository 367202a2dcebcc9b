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
