import type { Command } from 'commander';
import { formatTrainBench, parseBackends, runTrainBench } from '@tensorfleet/models';
import { readFileSync } from 'node:fs';
import {
  costModelReport, formatBench, formatCostModel, formatTopologyBench, runAllreduceBench, runTopologyBench, type AllreduceBenchResult, type TopologyRow,
} from '@tensorfleet/collective';
import { formatBenchTable, runDataBench } from '@tensorfleet/data';
import { formatCheckpointBench, formatPipelineBench, runCheckpointBench, runPipelineBench, type CheckpointMode } from '@tensorfleet/training';
import { resolveServices } from '@tensorfleet/infra';
import { formatControlPlaneBench, runControlPlaneBench } from '../control-bench/control-plane-bench';
import { formatRecoveryBench, runRecoveryBench, type FaultKind } from '../recovery/recovery-bench';

/** `fleet bench <suite>`: each suite lives beside the code it measures and returns rows. */
export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks: train, allreduce, data, pipeline, checkpoint, recovery, control-plane, cost-model (tables; --json for machines)');
  const list = (v: string) => v.split(',').filter(Boolean);
  const ints = (v: string) => list(v).map(Number);

  bench
    .command('pipeline')
    .description('model parallelism against one process: a ResNet pipeline (GPipe, 1F1B) and AlexNet\'s columns; efficiency against the ideal m/(m+S-1), bubble, bytes sent, memory per rank')
    .option('--model <name>', 'ResNet of the pipeline rows', 'resnet20')
    .option('--input <px>', 'input size', (v) => parseInt(v, 10), 32)
    .option('--batch <n>', 'batch per step', (v) => parseInt(v, 10), 64)
    .option('--stages <n>', 'pipeline stages (one process each)', (v) => parseInt(v, 10), 2)
    .option('--micro-batches <list>', 'micro-batch counts', ints, [2, 4, 8])
    .option('--schedules <list>', 'gpipe,1f1b', list, ['gpipe', '1f1b'])
    .option('--balances <list>', 'macs,time', list, ['macs', 'time'])
    .option('--no-columns', 'skip the AlexNet column rows')
    .option('--columns-input <px>', 'alexnet_paper input size', (v) => parseInt(v, 10), 227)
    .option('--columns-batch <n>', 'alexnet_paper batch', (v) => parseInt(v, 10), 16)
    .option('--columns-micro-batches <list>', 'micro-batch counts of the column rows', ints, [1, 2])
    .option('--steps <n>', 'timed steps per row', (v) => parseInt(v, 10), 3)
    .option('--rounds <n>', 'rounds of baseline + rows per micro-batch count; a row reports its median round', (v) => parseInt(v, 10), 3)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const result = await runPipelineBench({
        model: o.model, inputSize: o.input, batch: o.batch, stages: o.stages, microBatches: o.microBatches, schedules: o.schedules, balances: o.balances,
        columns: o.columns, columnsInputSize: o.columnsInput, columnsBatch: o.columnsBatch, columnsMicroBatches: o.columnsMicroBatches, steps: o.steps, rounds: o.rounds,
        onRow: o.json ? undefined : (r) => console.error(`  ${r.plan}${r.workers > 1 ? ` ×${r.workers}` : ''} ${r.model} m=${r.microBatches} ${r.schedule ?? ''} ${r.balance ?? ''}: ${r.imagesPerSec.toFixed(1)} img/s${r.ofIdeal !== undefined ? `, ${(r.ofIdeal * 100).toFixed(0)}% of ideal` : ''}`),
      });
      if (o.json) return console.log(JSON.stringify(result, null, 2));
      console.log(formatPipelineBench(result));
    });

  bench
    .command('train')
    .description('images/s of a full training step (forward, backward, SGD-momentum) per model and backend, then PyTorch\'s for the same step, with the ratio')
    .option('--steps <n>', 'timed steps per model', (v) => parseInt(v, 10), 5)
    .option('--models <list>', 'comma-separated model:input:batch[/micro], e.g. resnet20:32:64,resnet50:224:16/2')
    .option('--backends <list>', 'comma-separated backends (default: every one that loads here of tensorflow, onednn, wasm)', parseBackends)
    .option('--rounds <n>', 'times each model runs on every backend then PyTorch', (v) => parseInt(v, 10), 1)
    .option('--no-pytorch', 'skip PyTorch\'s figure (default: when FLEET_PYTHON, else /usr/bin/python3, imports torch)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const models = o.models
        ? String(o.models).split(',').map((s) => {
          const m = /^([\w-]+):(\d+):(\d+)(?:\/(\d+))?$/.exec(s);
          if (!m) throw new Error(`--models ${s}: expected model:input:batch[/micro], e.g. resnet50:224:16/2`);
          return { name: m[1], inputSize: Number(m[2]), batchSize: Number(m[3]), ...(m[4] ? { microBatch: Number(m[4]) } : {}) };
        })
        : undefined;
      const rows = await runTrainBench({
        models, steps: o.steps, backends: o.backends, rounds: o.rounds, pytorch: o.pytorch === false ? false : undefined,
        onRow: o.json ? undefined : (r) => console.error(`  ${r.model} b${r.batch} ${r.backend}/${r.device}×${r.threads}: ${Number(r.imagesPerSec).toFixed(1)} img/s`),
      });
      if (o.json) console.log(JSON.stringify({ rows }, null, 2));
      else console.log(formatTrainBench(rows));
    });

  bench
    .command('allreduce')
    .description('ring all-reduce over ZeroMQ between processes, like nccl-tests: size, time, algbw, busbw')
    .option('--world-sizes <list>', 'comma-separated world sizes', '2,4')
    .option('--transports <list>', 'ipc,tcp', 'ipc,tcp')
    .option('--max-bytes <n>', 'largest buffer in bytes', (v) => parseInt(v, 10), 256 * 1024 * 1024)
    .option('--curve', 'also measure with ZeroMQ CURVE on the ring\'s sockets: plain and CURVE busbw side by side')
    .option('--p2p-bytes <n>', 'bytes each raw point-to-point test moves per direction', (v) => parseInt(v, 10), 2 ** 30)
    .option('--topology <HxL>', 'flat ring vs hierarchical on H network-namespace hosts of L ranks (needs root)')
    .option('--rate-mbit <n>', 'with --topology: inter-host link rate, tc tbf', (v) => parseInt(v, 10), 1000)
    .option('--rails <n>', 'with --topology: inter-host links per host, each at --rate-mbit; local rank l uses rail l mod n (n = ranks per host: a rail-optimised cluster)', (v) => parseInt(v, 10), 1)
    .option('--rounds <n>', 'with --topology: interleaved rounds per algorithm', (v) => parseInt(v, 10), 2)
    .option('--chunk-bytes <n>', 'with --topology: pipeline chunk of the hierarchical all-reduce (default 2 MB)', (v) => parseInt(v, 10))
    .option('--json', 'print JSON')
    .action(async (o) => {
      if (o.topology !== undefined) {
        const m = /^(\d+)x(\d+)$/.exec(String(o.topology));
        if (!m) throw new Error(`--topology must be HOSTSxRANKS_PER_HOST, e.g. 2x2; got ${o.topology}`);
        const rows = await runTopologyBench({
          hosts: Number(m[1]), localRanks: Number(m[2]), rateMbit: o.rateMbit, rails: o.rails, rounds: o.rounds, chunkBytes: o.chunkBytes,
          ...(o.maxBytes !== 256 * 1024 * 1024 ? { sizes: [o.maxBytes] } : {}),
          onRow: o.json ? undefined : (r) => console.error(`  ${r.algorithm} ${r.bytes >> 20} MB round ${r.round}: busbw ${r.busbw.toFixed(4)} GB/s`),
        });
        return console.log(o.json ? JSON.stringify({ rows }, null, 2) : formatTopologyBench(rows));
      }
      const result = await runAllreduceBench({
        worldSizes: String(o.worldSizes).split(',').map(Number),
        transports: String(o.transports).split(',') as ('ipc' | 'tcp')[],
        maxBytes: o.maxBytes,
        p2pBytes: o.p2pBytes,
        ...(o.curve ? { security: ['plain', 'curve'] as const } : {}),
      });
      if (o.json) return console.log(JSON.stringify(result, null, 2));
      console.log(formatBench(result));
    });

  bench
    .command('cost-model')
    .description('α/β per link kind fitted from all-reduce timings, checked against the namespace measurements, then ResNet-50 data-parallel step time and scaling efficiency at scale')
    .option('--allreduce-json <file>', '`fleet bench allreduce --transports ipc --json` output (fits the intra-host link); default: measure now')
    .option('--topology-json <file>', '`fleet bench allreduce --topology 2x2 --json` output (fits the inter-host link); default: measure now (root)')
    .option('--holdout-json <files>', 'comma-separated topology outputs (e.g. 3x2) only predicted, never fitted', list, [])
    .option('--gpus <list>', 'GPU counts to predict', ints, [8, 64, 256, 1024])
    .option('--gpus-per-host <n>', 'GPUs per host', (v) => parseInt(v, 10), 8)
    .option('--step-ms <ms>', 'per-GPU compute time of one ResNet-50 step', Number, 250)
    .option('--link-gbit <n>', 'inter-host link of the predicted cluster, Gbit/s', Number, 25)
    .option('--alpha-us <n>', 'its latency per message, µs (not the one fitted on this shared machine)', Number, 25)
    .option('--link-efficiency <x>', 'share of the line rate a ring reaches on it', Number, 0.9)
    .option('--intra-gbyte <n>', 'intra-host bandwidth of the predicted cluster, GB/s', Number, 10)
    .option('--intra-alpha-us <n>', 'intra-host latency per message, µs', Number, 10)
    .option('--rails <n>', 'inter-host links per host of the predicted cluster, each at --link-gbit (the hierarchical rings spread over them)', (v) => parseInt(v, 10), 1)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const readJson = (f: string, what: string) => {
        try { return JSON.parse(readFileSync(f, 'utf8')); } catch (e) { throw new Error(`${what} ${f}: ${(e as Error).message}`); }
      };
      const progress = (m: string) => { if (!o.json) console.error(m); };
      let allreduce: AllreduceBenchResult;
      if (o.allreduceJson) allreduce = readJson(o.allreduceJson, '--allreduce-json');
      else {
        progress('measuring ipc all-reduce at world sizes 2 and 4 (up to 64 MB)');
        allreduce = await runAllreduceBench({ worldSizes: [2, 4], transports: ['ipc'], minBytes: 64 * 1024, maxBytes: 64 << 20, p2pMessageBytes: [1 << 20], p2pBytes: 256 << 20 });
      }
      let topology: TopologyRow[];
      if (o.topologyJson) topology = readJson(o.topologyJson, '--topology-json').rows;
      else {
        progress('measuring flat ring and hierarchical all-reduce on 2x2 network namespaces at 1000 Mbit/s');
        topology = await runTopologyBench({ hosts: 2, localRanks: 2, rateMbit: 1000, rounds: 1 });
      }
      const holdout = (o.holdoutJson as string[]).flatMap((f) => readJson(f, '--holdout-json').rows as TopologyRow[]);
      const report = costModelReport({
        allreduce, topology, holdout, gpus: o.gpus, gpusPerHost: o.gpusPerHost, stepMs: o.stepMs, linkGbit: o.linkGbit, alphaUs: o.alphaUs, linkEfficiency: o.linkEfficiency, intraGbyte: o.intraGbyte, intraAlphaUs: o.intraAlphaUs, rails: o.rails,
      });
      console.log(o.json ? JSON.stringify(report, null, 2) : formatCostModel(report));
    });

  bench
    .command('control-plane')
    .description('the coordinator and Redis under simulated workers (real registry, heartbeats, inboxes, no training) and a stream of jobs while workers die and join: scheduling p50/p99, Redis commands/s and memory, coordinator CPU/RSS, API latency')
    .option('--workers <n>', 'simulated workers (200 for a quick run)', (v) => parseInt(v, 10), 1000)
    .option('--jobs <n>', 'jobs submitted during the run', (v) => parseInt(v, 10), 300)
    .option('--history <n>', 'finished jobs written to Redis first', (v) => parseInt(v, 10), 10_000)
    .option('--submit-sec <n>', 'seconds over which the jobs are submitted', (v) => parseInt(v, 10), 60)
    .option('--churn-ms <n>', 'a busy worker is killed and a new one joins this often; 0 = never', (v) => parseInt(v, 10), 3000)
    .option('--step-ms <n>', 'simulated training step', (v) => parseInt(v, 10), 250)
    .option('--inbox-connections <n>', 'connections carrying the simulated inbox reads', (v) => parseInt(v, 10), 16)
    .option('--light-sampling', 'under load, time only the paged endpoints (not /metrics and ?state=, which read the whole history)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const result = await runControlPlaneBench({
        workers: o.workers, jobs: o.jobs, history: o.history, submitSec: o.submitSec, churnMs: o.churnMs, stepMs: o.stepMs, inboxConnections: o.inboxConnections, lightSampling: !!o.lightSampling,
        log: (l) => console.error(l),
      });
      console.log(o.json ? JSON.stringify(result, null, 2) : formatControlPlaneBench(result));
    });

  bench
    .command('checkpoint')
    .description('step time of one training rank against a real S3: no checkpoints, synchronous ones, background ones (snapshot, upload while training, commit); overhead per checkpoint and at one per minute')
    .option('--model <name>', 'model', 'resnet50')
    .option('--input <px>', 'input size (checkpoint size does not depend on it; step time does)', (v) => parseInt(v, 10), 64)
    .option('--batch <n>', 'batch per step', (v) => parseInt(v, 10), 8)
    .option('--interval <steps>', 'steps between checkpoints', (v) => parseInt(v, 10), 4)
    .option('--checkpoints <n>', 'checkpoints in each timed row', (v) => parseInt(v, 10), 3)
    .option('--modes <list>', 'none,sync,background', list, ['none', 'sync', 'background'])
    .option('--rounds <n>', 'interleaved rounds of every mode; rows report the median', (v) => parseInt(v, 10), 1)
    .option('--backend <name>', 'tensorflow, onednn or wasm (default: FLEET_BACKEND, else the first that loads)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const bad = (o.modes as string[]).filter((m) => !['none', 'sync', 'background'].includes(m));
      if (bad.length) throw new Error(`--modes: unknown ${bad.join(', ')}; use none, sync, background`);
      const services = await resolveServices({ label: 'bench' });
      try {
        const result = await runCheckpointBench({
          s3: services.s3, model: o.model, inputSize: o.input, batch: o.batch, interval: o.interval, checkpoints: o.checkpoints,
          modes: o.modes as CheckpointMode[], rounds: o.rounds, backend: o.backend, log: o.json ? undefined : (l) => console.error(l),
        });
        if (o.json) return console.log(JSON.stringify(result, null, 2));
        console.log(formatCheckpointBench(result));
      } finally {
        await services.stop();
      }
    });

  bench
    .command('recovery')
    .description('faults injected into a real 2-worker job (coordinator, workers, Redis, S3 on this machine): time to detect, time until training runs again, steps lost, checkpoint overhead per step')
    .option('--kinds <list>', 'sigkill (worker dies), sigstop (heartbeat lapse), stall (collective TIMEOUT, heartbeat alive)', list, ['sigkill', 'sigstop', 'stall'])
    .option('--model <name>', 'model of the job', 'resnet8')
    .option('--input <px>', 'input size', (v) => parseInt(v, 10), 32)
    .option('--batch <n>', 'batch per worker', (v) => parseInt(v, 10), 16)
    .option('--interval <steps>', 'steps between checkpoints', (v) => parseInt(v, 10), 10)
    .option('--fault-at <step>', 'inject the fault once the job reports this step', (v) => parseInt(v, 10), 25)
    .option('--heartbeat-ms <n>', 'sigkill, sigstop: worker heartbeat period (the alive key lives 3 periods)', (v) => parseInt(v, 10), 2000)
    .option('--collective-timeout-ms <n>', 'sigkill, sigstop: deadline of every collective', (v) => parseInt(v, 10), 20_000)
    .option('--stall-heartbeat-ms <n>', 'stall: heartbeat period (more than half the stall)', (v) => parseInt(v, 10), 10_000)
    .option('--stall-collective-timeout-ms <n>', 'stall: collective deadline (the stall lasts 1 s longer)', (v) => parseInt(v, 10), 15_000)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const bad = (o.kinds as string[]).filter((k) => !['sigkill', 'sigstop', 'stall'].includes(k));
      if (bad.length) throw new Error(`--kinds: unknown ${bad.join(', ')}; use sigkill, sigstop, stall`);
      const result = await runRecoveryBench({
        kinds: o.kinds as FaultKind[], model: o.model, inputSize: o.input, batch: o.batch, interval: o.interval, faultAtStep: o.faultAt,
        heartbeatMs: o.heartbeatMs, collectiveTimeoutMs: o.collectiveTimeoutMs, stallHeartbeatMs: o.stallHeartbeatMs, stallCollectiveTimeoutMs: o.stallCollectiveTimeoutMs, log: o.json ? undefined : (l) => console.error(l),
      });
      if (o.json) return console.log(JSON.stringify(result, null, 2));
      console.log(formatRecoveryBench(result));
    });

  bench
    .command('data')
    .description('ingestion MB/s to S3 and loader images/s (decode + ResNet augmentation + batching)')
    .option('--images <n>', 'generated ImageNet-sized JPEGs', (v) => parseInt(v, 10), 512)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const services = await resolveServices({ label: 'bench' });
      try {
        const result = await runDataBench({ s3: services.s3, images: o.images, log: o.json ? undefined : (l) => console.error(l) });
        if (o.json) return console.log(JSON.stringify(result, null, 2));
        console.log(formatBenchTable(result));
      } finally {
        await services.stop();
      }
    });
}
