import * as os from 'node:os';
import { tf } from './tf';
import { BackendUnavailableError } from './errors';
import { registerWasmKernels } from './register-wasm-kernels';
import { registerOnednnBackend } from './register-onednn-backend';
import { DNNL_BUILD_HINT, dnnlAddon, dnnlLoadError, dnnlThreadsSetting } from './onednn-addon';

export type BackendName = 'tensorflow' | 'onednn' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: BackendName;
  device: 'gpu' | 'cpu';
  /** npm package (or, for onednn, the native library) that provides the backend. */
  package: string;
  /** Compute threads the backend uses in this process. */
  threads: number;
}

export interface InitBackendOptions {
  /** Backend to use; default: FLEET_BACKEND, else the first that loads of tensorflow, onednn, wasm, cpu. */
  backend?: BackendName;
  /**
   * Register this project's wasm kernels (gradients the stock backend lacks or runs slowly).
   * 'minimal' registers only the missing Conv2DBackpropFilter (a baseline). Default true.
   */
  fleetKernels?: boolean | 'minimal';
  /** Environment to read FLEET_BACKEND and FLEET_DNNL_THREADS from. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

export const BACKENDS: readonly BackendName[] = ['tensorflow', 'onednn', 'wasm', 'cpu'];
const TF_PACKAGES = [
  { pkg: '@tensorflow/tfjs-node-gpu', device: 'gpu' as const },
  { pkg: '@tensorflow/tfjs-node', device: 'cpu' as const },
];

let current: BackendInfo | null = null;

/**
 * Selects and initialises the compute backend for this process. Explicit choice
 * (option, then FLEET_BACKEND) fails loudly when unavailable; automatic choice falls back
 * tensorflow → onednn → wasm → cpu.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = opts.env ?? process.env;
  const requested = opts.backend ?? parseBackend(env.FLEET_BACKEND);
  const fleetKernels = opts.fleetKernels ?? true;
  // onednn re-reads FLEET_DNNL_THREADS (cheap: its backend and kernels are registered once).
  if (current && (requested === undefined || requested === current.name) && current.name !== 'onednn') return current;

  const order = requested ? [requested] : BACKENDS;
  const failures: string[] = [];
  for (const name of order) {
    try {
      current = await activate(name, fleetKernels, env);
      return current;
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  const which = requested ?? 'any';
  throw new BackendUnavailableError(
    which,
    `No compute backend could be initialised (${failures.join('; ')}). ` +
      'Install @tensorflow/tfjs-node or @tensorflow/tfjs-backend-wasm, build the oneDNN addon (npm run build:native), or set FLEET_BACKEND=cpu.',
  );
}

/**
 * Backends that would load in this process, in selection order, without initialising any:
 * tensorflow when a tfjs-node package resolves, onednn when its addon loads, wasm, cpu.
 */
export function loadableBackends(): BackendName[] {
  const resolves = (pkg: string) => {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  };
  return BACKENDS.filter((name) => {
    if (name === 'tensorflow') return TF_PACKAGES.some(({ pkg }) => resolves(pkg));
    if (name === 'onednn') return dnnlAddon() !== null && resolves('@tensorflow/tfjs-backend-wasm');
    if (name === 'wasm') return resolves('@tensorflow/tfjs-backend-wasm');
    return true;
  });
}

/** The backend chosen by the last initBackend() call, or null before it. */
export function currentBackend(): BackendInfo | null {
  return current;
}

function parseBackend(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '' || value === 'auto') return undefined;
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendUnavailableError(
    value,
    `FLEET_BACKEND=${value} is not a backend; use one of ${BACKENDS.join(', ')} or auto.`,
  );
}

async function activate(name: BackendName, fleetKernels: boolean | 'minimal', env: NodeJS.ProcessEnv): Promise<BackendInfo> {
  switch (name) {
    case 'tensorflow':
      return activateTensorflow();
    case 'onednn':
      return activateOnednn(env);
    case 'wasm':
      return activateWasm(fleetKernels);
    case 'cpu':
      await setBackend('cpu');
      return { name: 'cpu', device: 'cpu', package: '@tensorflow/tfjs-backend-cpu', threads: 1 };
  }
}

async function activateTensorflow(): Promise<BackendInfo> {
  const errors: string[] = [];
  for (const { pkg, device } of TF_PACKAGES) {
    try {
      // Optional dependency: its install downloads libtensorflow, which fails on some hosts.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(pkg);
    } catch (err) {
      errors.push(`${pkg} not importable (${firstLine(err)})`);
      continue;
    }
    await setBackend('tensorflow');
    // tfjs-node-gpu runs on the CPU when CUDA is missing; its backend says which it got.
    const onGpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice;
    // libtensorflow sizes its intra-op pool to the host's cores.
    return { name: 'tensorflow', device: onGpu === false ? 'cpu' : device, package: pkg, threads: os.cpus().length };
  }
  throw new Error(errors.join(', '));
}

async function activateWasm(fleetKernels: boolean | 'minimal'): Promise<BackendInfo> {
  // Importing registers the backend; in Node it loads its .wasm files from its own dist/.
  requireWasm();
  if (fleetKernels) registerWasmKernels(fleetKernels === 'minimal' ? 'minimal' : 'all');
  await setBackend('wasm');
  // Node has no SharedArrayBuffer-backed Web Workers for the threaded build: one thread.
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? os.cpus().length : 1;
  return { name: 'wasm', device: 'cpu', package: '@tensorflow/tfjs-backend-wasm', threads };
}

/** wasm with this project's kernels, and oneDNN's convolutions and matrix products (the addon). */
async function activateOnednn(env: NodeJS.ProcessEnv): Promise<BackendInfo> {
  const addon = dnnlAddon();
  if (!addon) throw new Error(`the oneDNN addon does not load (${dnnlLoadError()}). ${DNNL_BUILD_HINT}`);
  const threads = dnnlThreadsSetting(env);
  requireWasm();
  registerWasmKernels('all');
  await setBackend('wasm');
  registerOnednnBackend(addon);
  await setBackend('onednn');
  addon.setThreads(threads);
  return { name: 'onednn', device: 'cpu', package: `oneDNN ${addon.version()} (libs/models/native)`, threads };
}

function requireWasm(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-backend-wasm');
}

async function setBackend(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
