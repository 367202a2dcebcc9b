import { readFileSync } from 'node:fs';
import * as os from 'node:os';

let cached: string | null = null;

/** Peers with equal host ids talk over ipc://. FLEET_HOST_ID overrides (tests use it to force tcp). */
export function hostId(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FLEET_HOST_ID) return env.FLEET_HOST_ID;
  if (cached) return cached;
  let machine = '';
  for (const f of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      machine = readFileSync(f, 'utf8').trim();
      if (machine) break;
    } catch {
      // not on this system
    }
  }
  return (cached = `${os.hostname()}/${machine}`);
}

/** First non-internal IPv4 address, for advertising a wildcard bind. */
export function primaryIPv4(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
