import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { SCRIPTS_DIR, SWIFT_ACCESS_KEY, SWIFT_REGION, SWIFT_SECRET_KEY, type S3Config } from '@tensorfleet/infra';
import { readPid } from './daemon-process';
import type { ClusterPaths } from './cluster-dir';

/**
 * The cluster's S3 server: infra/scripts/swift.sh on `paths.s3Data`, whose processes run in
 * their own session (they outlive `fleet up`) and keep their objects across restarts.
 * Not infra's startSwift: that one stops its Swift when the starting process exits.
 */
export async function startSwiftStore(paths: ClusterPaths, port: number, tls?: { certFile: string; keyFile: string; caFile: string }): Promise<S3Config> {
  // swift.sh keeps the TLS setting of the first start in s3Data/proxy.tls.
  const env = tls ? { SWIFT_TLS_CERT: tls.certFile, SWIFT_TLS_KEY: tls.keyFile, SWIFT_TLS_CA: tls.caFile } : undefined;
  await swiftSh(['start', paths.s3Data, String(port)], 10 * 60_000, env);
  return s3Config(port, tls?.caFile);
}

export async function stopSwiftStore(paths: ClusterPaths): Promise<void> {
  await swiftSh(['stop', paths.s3Data], 60_000);
}

/** True when the proxy runs and a signed S3 request succeeds. */
export async function swiftStoreUp(paths: ClusterPaths): Promise<boolean> {
  return swiftSh(['status', paths.s3Data], 30_000).then(() => true, () => false);
}

/** The proxy's PID (the process S3 clients talk to), for `fleet status`. */
export function swiftProxyPid(paths: ClusterPaths): number | null {
  return readPid(paths.s3Data, 'proxy');
}

export function swiftLogs(paths: ClusterPaths): string {
  return join(paths.s3Data, '*.log');
}

/** The local Swift's S3Config; https when it has the cluster's CA. */
export function s3Config(port: number, caFile?: string): S3Config {
  return { endPoint: '127.0.0.1', port, useSSL: !!caFile, accessKey: SWIFT_ACCESS_KEY, secretKey: SWIFT_SECRET_KEY, region: SWIFT_REGION, ...(caFile ? { caFile } : {}) };
}

function swiftSh(args: string[], timeout: number, env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [join(SCRIPTS_DIR, 'swift.sh'), ...args], { timeout, maxBuffer: 1 << 20, env: env ? { ...process.env, ...env } : undefined }, (err, stdout, stderr) => {
      if (err) reject(new Error(`swift.sh ${args[0]} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout).trim());
    });
  });
}
