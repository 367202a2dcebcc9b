import { startScriptService } from './service-process';
import { InfraError } from './errors';
import { SWIFT_ACCESS_KEY, SWIFT_REGION, SWIFT_SECRET_KEY, type RunningSwift, type SwiftStartOptions } from './types';

/**
 * A private single-node OpenStack Swift with the S3 API (s3api + tempauth) and its own
 * memcached on 127.0.0.1 (scripts/swift.sh). Takes about 5 s; installs the Debian
 * packages first when they are missing. stopProxy()/startProxy() make an S3 outage (the
 * storage servers keep their data). With `tls` the proxy serves https (Swift's own
 * cert_file/key_file, eventlet's TLS) and config carries useSSL and the CA to trust.
 */
export async function startSwift(opts: SwiftStartOptions = {}): Promise<RunningSwift> {
  if (opts.tls && !(opts.tls.certFile && opts.tls.keyFile && opts.tls.caFile)) {
    throw new InfraError('BAD_OPTIONS', 'swift: tls needs certFile, keyFile and caFile (tlsCertificates() makes them)');
  }
  const env = opts.tls ? { SWIFT_TLS_CERT: opts.tls.certFile, SWIFT_TLS_KEY: opts.tls.keyFile, SWIFT_TLS_CA: opts.tls.caFile } : undefined;
  const svc = await startScriptService('swift.sh', 'swift', opts, env);
  return {
    url: svc.url,
    dir: svc.dir,
    config: {
      endPoint: '127.0.0.1',
      port: svc.port,
      useSSL: !!opts.tls,
      accessKey: SWIFT_ACCESS_KEY,
      secretKey: SWIFT_SECRET_KEY,
      region: SWIFT_REGION,
      ...(opts.tls ? { caFile: opts.tls.caFile } : {}),
    },
    stop: svc.stop,
    stopProxy: async () => void (await svc.command('stop-proxy')),
    startProxy: async () => void (await svc.command('start-proxy')),
    stopObjectServer: async () => void (await svc.command('stop-object')),
    startObjectServer: async () => void (await svc.command('start-object')),
  };
}
