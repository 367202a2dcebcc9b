// Spec helper (not exported): the run's Redis (TF_TEST_REDIS_URL), else a private one
// from @tensorfleet/infra, stopped by stop().
import { startRedis, testId } from '@tensorfleet/infra';

export interface SpecRedis { url: string; stop(): Promise<void> }

export async function specRedis(): Promise<SpecRedis> {
  const fromEnv = process.env.TF_TEST_REDIS_URL;
  if (fromEnv) return { url: fromEnv, stop: async () => {} };
  const r = await startRedis({ label: 'control-spec' });
  return { url: r.url, stop: () => r.stop() };
}

/** A key prefix no other test uses (`tf-<name>-<hex>:`); every one starts with `tf-`. */
export function specPrefix(name: string): string {
  return `${testId(name)}:`;
}
