import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

/** NVIDIA GPUs `nvidia-smi -L` lists; 0 when it is missing or fails. */
export function countGpus(): number {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    return out.split('\n').filter((l) => /^GPU \d+/.test(l)).length;
  } catch {
    return 0;
  }
}

/** One worker per GPU, else one per core (a data-parallel CPU worker trains on one thread). */
export function defaultWorkers(): { count: number; gpus: number } {
  const gpus = countGpus();
  return { count: gpus > 0 ? gpus : availableParallelism(), gpus };
}
