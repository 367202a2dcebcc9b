// Spec helper (not exported): the run's Redis from TF_TEST_REDIS_URL, else a private
// redis-server this process starts and stops. control may not import @tensorfleet/infra
// (module boundaries), so it starts the binary itself.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface SpecRedis { url: string; stop(): Promise<void> }

export async function specRedis(): Promise<SpecRedis> {
  const fromEnv = process.env.TF_TEST_REDIS_URL;
  if (fromEnv) return { url: fromEnv, stop: async () => {} };
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try { await r.connect(); await r.ping(); r.disconnect(); break; } catch {
      r.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) { child.kill(); throw new Error('redis-server did not start: is it installed (apt-get install redis-server)?'); }
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return {
    url,
    stop: () => new Promise<void>((res) => { if (child.exitCode !== null) return res(); child.once('exit', () => res()); child.kill('SIGTERM'); }),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** A key prefix no other test uses. */
export function specPrefix(name: string): string {
  return `tftest:${name}:${process.pid}:${Date.now().toString(36)}:`;
}
