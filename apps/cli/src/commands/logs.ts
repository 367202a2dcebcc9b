import type { Command } from 'commander';
import { ApiError, CoordinatorClient, type LogLineView } from '../lib/api-client';
import { TERMINAL_STATES } from '../cluster/follow-job';
import { fail } from '../lib/output';

export function registerLogs(program: Command): void {
  program
    .command('logs <job>')
    .description("print a job's log lines, as its workers wrote them (kept in Redis, the newest 10,000 per job by default)")
    .option('--rank <r>', 'only this rank\'s lines')
    .option('--follow', 'keep printing new lines until the job ends (Ctrl-C stops following, not the job)')
    .option('--json', 'one JSON object per line: { id, ts, rank, level, workerId, msg }')
    .option('--coordinator <url>', 'coordinator base URL', process.env.FLEET_COORDINATOR ?? 'http://127.0.0.1:3000')
    .action(async (id: string, o) => {
      const rank = o.rank === undefined ? undefined : Number(o.rank);
      if (rank !== undefined && (!Number.isInteger(rank) || rank < 0)) fail(`--rank ${o.rank}: give a rank, a whole number >= 0`);
      const client = new CoordinatorClient(o.coordinator);
      const print = (l: LogLineView) => console.log(o.json ? JSON.stringify(l) : formatLogLine(l));
      await printLogs(client, id, { rank, follow: !!o.follow }, print).catch((e) => fail(e instanceof ApiError ? e.message : (e as Error).message));
    });
}

/** `2026-12-07T12:00:00.000Z rank 0 w-1 info  message` */
export function formatLogLine(l: LogLineView): string {
  return `${new Date(l.ts).toISOString()} rank ${l.rank} ${l.workerId} ${l.level.padEnd(5)} ${l.msg}`;
}

/**
 * Prints every kept line of the job, page by page; with `follow`, then polls for new ones
 * until the job has ended (completed, failed, cancelled or paused) and a last read is empty.
 */
export async function printLogs(
  client: CoordinatorClient, id: string, opts: { rank?: number; follow?: boolean; pollMs?: number },
  print: (l: LogLineView) => void,
): Promise<void> {
  let after = '0';
  for (;;) {
    // The job's state is read before the lines: a line written before it ended is never missed.
    const ended = opts.follow ? TERMINAL_STATES.includes((await client.getJob(id)).state) : true;
    // Until the cursor stops moving: a rank-filtered page may be empty yet move past other ranks' lines.
    for (let prev = ''; prev !== after;) {
      prev = after;
      const page = await client.logs(id, { after, rank: opts.rank, limit: 1000 });
      page.lines.forEach(print);
      after = page.next;
    }
    if (ended) return;
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}
