import { startScriptService } from './service-process';
import { SWIFT_ACCESS_KEY, SWIFT_REGION, SWIFT_SECRET_KEY, type RunningSwift, type StartOptions } from './types';

/**
 * A private single-node OpenStack Swift with the S3 API (s3api + tempauth) and its own
 * memcached on 127.0.0.1 (scripts/swift.sh). Takes about 5 s; installs the Debian
 * packages first when they are missing. stopProxy()/startProxy() make an S3 outage (the
 * storage servers keep their data).
 */
export async function startSwift(opts: StartOptions = {}): Promise<RunningSwift> {
  const svc = await startScriptService('swift.sh', 'swift', opts);
  return {
    url: svc.url,
    dir: svc.dir,
    config: {
      endPoint: '127.0.0.1',
      port: svc.port,
      useSSL: false,
      accessKey: SWIFT_ACCESS_KEY,
      secretKey: SWIFT_SECRET_KEY,
      region: SWIFT_REGION,
    },
    stop: svc.stop,
    stopProxy: async () => void (await svc.command('stop-proxy')),
    startProxy: async () => void (await svc.command('start-proxy')),
    stopObjectServer: async () => void (await svc.command('stop-object')),
    startObjectServer: async () => void (await svc.command('start-object')),
  };
}
