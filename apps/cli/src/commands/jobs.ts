import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { CoordinatorClient, ApiError } from '../lib/api-client';
import { followJob } from '../cluster/follow-job';
import { formatCell, printTable, progressBar, fail } from '../lib/output';

const coordinatorOption = (cmd: Command) =>
  cmd.option('--coordinator <url>', 'coordinator base URL', process.env.FLEET_COORDINATOR ?? 'http://127.0.0.1:3000');

export function registerJobs(program: Command): void {
  coordinatorOption(
    program
      .command('submit <spec>')
      .description('submit a job spec (YAML or JSON) to the coordinator')
      .option('--follow', 'follow the job with a progress bar until it ends')
      .option('--json', 'print JSON'),
  ).action(async (file: string, o) => {
    const client = new CoordinatorClient(o.coordinator);
    let spec: unknown;
    try {
      spec = parseYaml(readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`cannot read ${file}: ${(e as Error).message}`);
    }
    const job = await client.submitJob(spec).catch(explain);
    if (!o.follow) {
      console.log(o.json ? JSON.stringify(job) : `submitted job ${job.id} (${job.state})`);
      return;
    }
    console.error(`submitted job ${job.id}; following it (Ctrl-C stops following, not the job)`);
    let bar: ReturnType<typeof progressBar> | undefined;
    const end = await followJob(client, job.id, (j) => {
      if (!j.totalSteps) return;
      bar ??= progressBar(`job ${j.id}`, j.totalSteps, { loss: '', ips: '' }, `job ${j.id} |{bar}| step {value}/{total} | loss {loss} | {ips} img/s`);
      bar.update(j.step ?? 0, { loss: formatCell(j.loss), ips: formatCell(j.imagesPerSec) });
    }).finally(() => bar?.stop());
    console.log(o.json ? JSON.stringify(end) : `job ${end.id}: ${end.state}${end.error ? ` (${end.error})` : ''}`);
    if (end.state !== 'completed') process.exit(1);
  });

  coordinatorOption(program.command('jobs').description('list jobs').option('--json', 'print JSON')).action(async (o) => {
    const jobs = await new CoordinatorClient(o.coordinator).listJobs().catch(explain);
    if (o.json) return console.log(JSON.stringify(jobs, null, 2));
    printTable(jobs.map((j) => ({
      id: j.id, name: j.spec?.name ?? '', state: j.state, step: j.step ?? 0, total: j.totalSteps ?? 0,
      loss: j.loss, 'img/s': j.imagesPerSec, error: j.error ?? '',
    })));
  });

  coordinatorOption(program.command('job <id>').description('show one job: its state, and which worker holds which part of the model').option('--json', 'print JSON')).action(async (id: string, o) => {
    const job = await new CoordinatorClient(o.coordinator).getJob(id).catch(explain);
    if (o.json) return console.log(JSON.stringify(job, null, 2));
    const { layout, spec, members: _m, ...rest } = job;
    console.log(Object.entries(rest).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n'));
    console.log(`spec: ${JSON.stringify(spec)}`);
    if (layout?.length) {
      console.log('\nlayout:');
      printTable(layout.map((l) => ({
        rank: l.rank, worker: l.workerId ?? '', replica: l.replica, [l.role === 'replica' ? 'part' : l.role]: l.role === 'replica' ? 'whole model' : l.stage,
        sections: l.sections[0] === l.sections[1] ? l.sections[0] : `${l.sections[0]} .. ${l.sections[1]}`,
        params: l.params, 'weights MB': (l.weightBytes / 1e6).toFixed(1), 'optimizer MB': (l.optimizerBytes / 1e6).toFixed(1), GMACs: (l.macs / 1e9).toFixed(2),
      })));
    }
  });

  coordinatorOption(program.command('cancel <id>').description('cancel a job')).action(async (id: string, o) => {
    const job = await new CoordinatorClient(o.coordinator).jobAction(id, 'cancel').catch(explain);
    console.log(`job ${job.id}: ${job.state}`);
  });

  coordinatorOption(
    program
      .command('pause <id>')
      .description('pause a job: its ranks checkpoint and stop, after the step under way or after --at-step')
      .option('--at-step <n>', 'pause after this step (a later one than the job has reached)', (v) => Number(v)),
  ).action(async (id: string, o) => {
    const body = o.atStep !== undefined ? { atStep: o.atStep as number } : undefined;
    const job = await new CoordinatorClient(o.coordinator).jobAction(id, 'pause', body).catch(explain);
    console.log(`job ${job.id}: ${job.state}${job.pauseAtStep ? `, pausing after step ${job.pauseAtStep}` : ''}`);
  });

  coordinatorOption(
    program
      .command('resume <id>')
      .description('resume a paused or failed job from its last committed checkpoint, on another plan with --parallelism')
      .option('--parallelism <json|yaml>', 'the plan to resume on, as in a job spec, e.g. \'{ dataParallel: 1, modelParallel: { kind: pipeline, stages: 3 } }\''),
  ).action(async (id: string, o) => {
    const body = o.parallelism ? { parallelism: parseYaml(o.parallelism) } : undefined;
    const job = await new CoordinatorClient(o.coordinator).jobAction(id, 'resume', body).catch(explain);
    console.log(`job ${job.id}: ${job.state}${body ? ` (${job.layout?.length ?? '?'} workers)` : ''}`);
  });

  coordinatorOption(program.command('workers').description('list registered workers').option('--json', 'print JSON')).action(async (o) => {
    const ws = await new CoordinatorClient(o.coordinator).listWorkers().catch(explain);
    if (o.json) return console.log(JSON.stringify(ws, null, 2));
    printTable(ws.map((w) => ({
      id: w.id, host: w.host, pid: w.pid, backend: w.backend, device: w.device,
      alive: w.alive ? 'yes' : `no (${Math.round((Date.now() - w.lastSeen) / 1000)} s)`, state: w.state, job: w.jobId ?? '', rank: w.rank ?? '',
    })));
  });

  coordinatorOption(program.command('forget-worker <id>').description('remove a lost worker from the registry now (the coordinator also does so after FLEET_FORGET_LOST_AFTER_MS)'))
    .action(async (id: string, o) => {
      await new CoordinatorClient(o.coordinator).forgetWorker(id).catch(explain);
      console.log(`worker ${id}: forgotten`);
    });
}

function explain(e: unknown): never {
  if (e instanceof ApiError) fail(e.message);
  fail((e as Error).message);
}
