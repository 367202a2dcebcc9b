import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/** PyTorch's figure for one benchmark step (pytorch-train-step.py in a child process). */
export interface PytorchStep {
  version: string;
  msPerStep: number;
  imagesPerSec: number;
  cpuMsPerStep: number;
  /** Peak RSS above what the process held before the model was built. */
  peakBytes: number;
}

const SCRIPT = path.resolve(__dirname, '../../src/bench/pytorch-train-step.py');

/** The python with torch and torchvision: FLEET_PYTHON, default /usr/bin/python3 (Debian's python3-torch). */
export function pytorchPython(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLEET_PYTHON || '/usr/bin/python3';
}

let importable: boolean | undefined;

/** Whether the python can import torch and torchvision (checked once). */
export function pytorchAvailable(): boolean {
  importable ??= spawnSync(pytorchPython(), ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
  return importable;
}

/** Runs the step in PyTorch; an Error says why it could not (no such model in the script, a crash). */
export function runPytorchStep(model: string, inputSize: number, batch: number, steps: number, warmup: number, threads: number): PytorchStep | Error {
  const args = [SCRIPT, model, inputSize, batch, steps, warmup, threads].map(String);
  const run = spawnSync(pytorchPython(), args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  const last = (run.stdout ?? '').trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !last.startsWith('{')) {
    const why = (run.stderr || run.error?.message || `exit ${run.status}`).trim().split('\n').pop();
    return new Error(`PyTorch step for ${model} failed: ${why}`);
  }
  const out = JSON.parse(last) as PytorchStep | { error: string };
  return 'error' in out ? new Error(out.error) : out;
}
