import { ModelError } from './errors';

/** Options every model takes. */
export interface CommonOptions {
  /** Classifier outputs (logits). Default: the variant's (1000 for ImageNet models, 10 for CIFAR). */
  numClasses: number;
  /** Square input side in pixels, RGB, NHWC. Default: the variant's (224; 227 alexnet_paper; 32 CIFAR). */
  inputSize: number;
  /** Seeds every random initializer (seed + k for the k-th); unset = Math.random. */
  seed?: number;
  /**
   * false: skip random initialisation (weights zero, batch-norm gamma 1) for callers that load
   * weights next — checkpoint resume, ranks that receive rank 0's weights. Default true.
   */
  initWeights?: boolean;
}

export function assertPositiveInt(name: string, value: unknown): void {
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new ModelError('INVALID_OPTION', `option ${name} must be a positive integer, got ${String(value)}`);
  }
}

export function assertOneOf<V>(name: string, value: V, allowed: readonly V[]): void {
  if (!allowed.includes(value)) {
    throw new ModelError('INVALID_OPTION', `option ${name} must be one of ${allowed.join(', ')}, got ${String(value)}`);
  }
}
