import type { Command } from 'commander';
import { ObjectStore, readManifest } from '@tensorfleet/data';
import { confinedPath, createModel, exportLayersModel, initBackend, ModelIoError, weightsFromBytes } from '@tensorfleet/models';
import { latestCheckpoint, loadCheckpoint, modelOptionsFromSpec } from '@tensorfleet/training';
import { checkpointBucket } from '@tensorfleet/control';
import { CoordinatorClient } from '../lib/api-client';
import { fail } from '../lib/output';
import { clusterS3 } from '../lib/cluster-s3';

export function registerExport(program: Command): void {
  program
    .command('export <jobId>')
    .description("write a job's latest committed checkpoint as a TensorFlow.js layers model (model.json + weights.bin) for `fleet predict` and tf.loadLayersModel")
    .requiredOption('--out <dir>', 'output folder')
    .option('--coordinator <url>', 'coordinator base URL', process.env.FLEET_COORDINATOR ?? 'http://127.0.0.1:3000')
    .option('--base-dir <dir>', 'only write inside this folder (relative --out is relative to it; ".." and links out of it are refused); default FLEET_MODEL_DIR', process.env.FLEET_MODEL_DIR)
    .action(async (jobId: string, o) => {
      if (o.baseDir) {
        try {
          o.out = confinedPath(o.baseDir, o.out, '--out');
        } catch (e) {
          if (e instanceof ModelIoError) fail(e.message);
          throw e;
        }
      }
      const s3 = clusterS3('fleet export');
      const job = await new CoordinatorClient(o.coordinator).getJob(jobId);
      const spec = job.spec;
      const store = new ObjectStore(s3);
      const bucket = checkpointBucket(spec);
      const ckpt = await latestCheckpoint(store, bucket, jobId);
      if (!ckpt) fail(`job ${jobId} has no committed checkpoint in s3://${bucket}/checkpoints/${jobId}/`);
      const manifest = await readManifest(store, spec.dataset.bucket, spec.dataset.prefix);
      await initBackend();
      const model = createModel(spec.model.name, { ...modelOptionsFromSpec(spec, manifest), initWeights: false });
      weightsFromBytes(model, (await loadCheckpoint(store, bucket, ckpt.key)).weights);
      const { bytes } = await exportLayersModel(model, o.out, {
        modelName: spec.model.name,
        classNames: manifest.classes.map((c) => c.name),
        inputSize: model.inputs[0].shape[1] as number,
        mean: manifest.mean,
        std: manifest.std,
        cropFraction: 1,
        job: jobId,
        step: ckpt.step,
      });
      console.log(`exported ${spec.model.name} of job ${jobId} at step ${ckpt.step} to ${o.out} (${(bytes / 1e6).toFixed(1)} MB)`);
    });
}
