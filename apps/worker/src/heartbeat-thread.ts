import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ControlPlane, openRedis, type RedisTls } from '@tensorfleet/control';

interface HeartbeatOptions { redisUrl: string; redisTls?: RedisTls; prefix: string; workerId: string; intervalMs: number; ttlMs: number }

/**
 * The heartbeat runs on a thread of its own with its own Redis connection: a training
 * step on the wasm backend is synchronous and can hold the main event loop for many
 * seconds (ResNet-50 on one core), and a busy worker must not be declared lost. The
 * thread dies with the process, so a crashed or killed worker still stops heartbeating.
 * When Redis says the worker is no longer registered (the coordinator forgot it after a
 * long loss, or Redis was flushed), the thread tells the main thread, which registers again.
 */
export class HeartbeatThread {
  private readonly thread: Worker;

  constructor(opts: HeartbeatOptions, onForgotten: () => void) {
    this.thread = new Worker(__filename, { workerData: opts });
    this.thread.unref();
    this.thread.on('message', (m) => { if (m === 'forgotten') onForgotten(); });
    this.thread.on('error', (e) => console.error(`[heartbeat] thread failed: ${e.message}`));
  }

  async stop(): Promise<void> {
    this.thread.postMessage('stop');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { void this.thread.terminate().then(() => resolve()); }, 1000);
      this.thread.once('exit', () => { clearTimeout(t); resolve(); });
    });
  }
}

if (!isMainThread && workerData?.workerId) {
  const { redisUrl, redisTls, prefix, workerId, intervalMs, ttlMs } = workerData as HeartbeatOptions;
  // One retry: a beat that cannot go out while Redis is away fails, and the next one tries again.
  // The thread reads the TLS files itself: Buffers of the main thread's options would be copied anyway.
  const redis = openRedis(redisUrl, redisTls, 'heartbeat', (l) => console.log(`${new Date().toISOString()} [heartbeat ${workerId}] ${l}`), { maxRetriesPerRequest: 1 });
  const control = new ControlPlane(redis, { prefix });
  const beat = () => control.heartbeat(workerId, ttlMs)
    .then((registered) => { if (!registered) parentPort!.postMessage('forgotten'); })
    .catch((e) => console.error(`[heartbeat] ${workerId}: ${e.message}`));
  void beat();
  const timer = setInterval(beat, intervalMs);
  parentPort!.on('message', (m) => {
    if (m === 'stop') {
      clearInterval(timer);
      redis.disconnect();
      process.exit(0);
    }
  });
}
