import type { CoordinatorClient, JobView } from '../lib/api-client';

export const TERMINAL_STATES = ['completed', 'failed', 'cancelled', 'paused'];

/** Polls a job until it reaches a terminal state (or `until` returns true), reporting each view. */
export async function followJob(
  client: CoordinatorClient,
  id: string,
  onUpdate: (job: JobView) => void = () => undefined,
  opts: { intervalMs?: number; timeoutMs?: number; until?: (job: JobView) => boolean } = {},
): Promise<JobView> {
  const deadline = Date.now() + (opts.timeoutMs ?? 24 * 3600_000);
  for (;;) {
    const job = await client.getJob(id);
    onUpdate(job);
    if (TERMINAL_STATES.includes(job.state) || opts.until?.(job)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state} after ${(opts.timeoutMs ?? 0) / 1000}s`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}
