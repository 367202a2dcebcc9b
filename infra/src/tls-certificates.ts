import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfraError } from './errors';
import { SCRIPTS_DIR } from './service-process';
import type { TestCertificates } from './types';

/**
 * A private CA and certificates it signed for 127.0.0.1 and localhost, one per name (default
 * `server`), made with openssl by scripts/tls-certs.sh in `dir` (default: a new temp folder;
 * the caller removes it). Each certificate is good as a server's and as a client's.
 */
export function tlsCertificates(opts: { dir?: string; names?: string[] } = {}): Promise<TestCertificates> {
  const names = opts.names ?? ['server'];
  if (!names.length || names.some((n) => !/^[\w.-]+$/.test(n))) throw new InfraError('BAD_OPTIONS', `tlsCertificates: names must be non-empty words (letters, digits, '.', '_', '-'), got ${JSON.stringify(names)}`);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'tf-tls-'));
  return new Promise((done, fail) => {
    execFile('bash', [join(SCRIPTS_DIR, 'tls-certs.sh'), dir, ...names], { timeout: 60_000 }, (err, _out, stderr) => {
      if (err) return fail(new InfraError('START_FAILED', `making TLS certificates in ${dir} failed: ${String(stderr).trim() || err.message}`));
      done({
        dir,
        caFile: join(dir, 'ca.pem'),
        certs: Object.fromEntries(names.map((n) => [n, { certFile: join(dir, `${n}.pem`), keyFile: join(dir, `${n}.key`) }])),
      });
    });
  });
}
