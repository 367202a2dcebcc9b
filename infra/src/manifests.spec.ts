// The deployment files cannot be run here (no Docker engine, no cluster): this checks that
// they parse and that they agree with each other and with the Dockerfile.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse, parseAllDocuments } from 'yaml';

const INFRA = resolve(__dirname, '..');
type Obj = Record<string, any>;

function loadAll(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true });
  for (const d of docs) assert.deepEqual(d.errors.map(String), [], `${file} parses`);
  return docs.map((d) => d.toJS({ maxAliasCount: -1 }) as Obj).filter((d) => d);
}

const dockerStages = [...readFileSync(join(INFRA, 'Dockerfile'), 'utf8').matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);

describe('docker-compose.yml', () => {
  const compose = loadAll(join(INFRA, 'docker-compose.yml'))[0];
  const services = compose.services as Record<string, Obj>;

  it('has redis, minio with a bucket, the coordinator on 3000 and GPU workers', () => {
    for (const name of ['redis', 'minio', 'minio-init', 'coordinator', 'worker-gpu0', 'worker-gpu1']) assert.ok(services[name], name);
    assert.match(services['minio-init'].command.join(' '), /mc mb --ignore-existing fleet\/tensorfleet/);
    assert.deepEqual(services.coordinator.command, ['node', 'apps/coordinator/dist/main.js']);
    assert.ok(services.coordinator.ports.includes('3000:3000'));
  });

  it('gives every GPU worker the NVIDIA runtime, the tensorflow backend and its own GPU', () => {
    const workers = Object.entries(services).filter(([n]) => n.startsWith('worker-gpu'));
    const gpus = workers.map(([name, svc]) => {
      const dev = svc.deploy.resources.reservations.devices[0];
      assert.equal(dev.driver, 'nvidia', name);
      assert.deepEqual(dev.capabilities, ['gpu'], name);
      assert.equal(svc.environment.FLEET_BACKEND, 'tensorflow', name);
      assert.match(svc.environment.REDIS_URL, /^redis:\/\/:\$\{REDIS_PASSWORD:-[^}]+\}@redis:6379$/, name);
      assert.equal(svc.environment.S3_ENDPOINT, 'http://minio:9000', name);
      assert.equal(svc.build.target, 'gpu', name);
      return svc.environment.CUDA_VISIBLE_DEVICES;
    });
    assert.deepEqual(gpus, workers.map((_, i) => String(i)), 'one distinct GPU per worker, in order');
  });

  it('Redis asks for the password the apps send', () => {
    const redis = services.redis;
    const i = redis.command.indexOf('--requirepass');
    assert.ok(i > 0, 'redis-server --requirepass');
    const password = redis.command[i + 1];
    assert.equal(redis.environment.REDISCLI_AUTH, password, 'the healthcheck authenticates');
    assert.equal(services.coordinator.environment.REDIS_URL, `redis://:${password}@redis:6379`);
  });

  it('builds only Dockerfile stages that exist, from the repository root', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (!svc.build) continue;
      assert.equal(svc.build.dockerfile, 'infra/Dockerfile', name);
      assert.equal(svc.build.context, '..', name);
      assert.ok(dockerStages.includes(svc.build.target), `${name}: stage '${svc.build.target}' in ${dockerStages}`);
    }
    assert.deepEqual(dockerStages, ['build', 'gpu', 'runtime'], 'runtime last: the default target');
  });

  it('depends only on services that exist', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const dep of Object.keys(svc.depends_on ?? {})) assert.ok(services[dep], `${name} -> ${dep}`);
    }
  });
});

describe('k8s manifests', () => {
  const files = readdirSync(join(INFRA, 'k8s')).filter((f) => f.endsWith('.yaml')).sort();
  const byFile = new Map(files.map((f) => [f, loadAll(join(INFRA, 'k8s', f))]));
  const all = [...byFile.values()].flat().filter((d) => d.kind !== 'Kustomization');
  const find = (kind: string, name: string) => all.find((d) => d.kind === kind && d.metadata?.name === name);

  it('every object has apiVersion, kind, name and the tensorfleet namespace', () => {
    assert.ok(all.length >= 9);
    for (const d of all) {
      assert.ok(d.apiVersion && d.kind && d.metadata?.name, JSON.stringify(d).slice(0, 80));
      if (d.kind !== 'Namespace') assert.equal(d.metadata.namespace, 'tensorfleet', `${d.kind}/${d.metadata.name}`);
    }
  });

  it('kustomization lists every manifest file', () => {
    const k = parse(readFileSync(join(INFRA, 'k8s', 'kustomization.yaml'), 'utf8'));
    assert.deepEqual([...k.resources].sort(), files.filter((f) => f !== 'kustomization.yaml'));
  });

  it('config holds the Redis host, its CA file and S3_* for the apps; the passwords are in Secrets', () => {
    const cm = find('ConfigMap', 'tensorfleet-config')!;
    const secret = find('Secret', 'tensorfleet-s3')!;
    assert.equal(cm.data.REDIS_URL, undefined, 'REDIS_URL holds the password: each app builds it from the Secret');
    assert.match(cm.data.REDIS_HOST, /^redis\.tensorfleet\.svc\.cluster\.local:6379$/);
    assert.equal(cm.data.REDIS_TLS_CA_FILE, '/etc/tensorfleet/redis-tls/ca.crt');
    assert.match(cm.data.S3_ENDPOINT, /^https?:\/\//);
    assert.ok(secret.stringData.S3_ACCESS_KEY && secret.stringData.S3_SECRET_KEY);
    assert.ok(find('Secret', 'tensorfleet-redis')!.stringData.REDIS_PASSWORD);
  });

  it('Redis speaks only TLS and knows only the ACL user the apps connect as, with the password from the Secret', () => {
    const redis = find('StatefulSet', 'redis')!.spec.template.spec;
    const args: string[] = redis.containers[0].args;
    const after = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(after('--port'), '0', 'the plain port is off');
    assert.equal(after('--tls-port'), '6379');
    const mount = redis.containers[0].volumeMounts.find((m: Obj) => m.name === 'redis-tls').mountPath;
    for (const f of ['--tls-cert-file', '--tls-key-file', '--tls-ca-cert-file']) assert.ok(after(f).startsWith(`${mount}/`), f);
    const users = args.map((a, i) => (a === '--user' ? args.slice(i + 1, args.indexOf('--user', i + 1) === -1 ? undefined : args.indexOf('--user', i + 1)) : null)).filter(Boolean) as string[][];
    assert.deepEqual(users[0], ['default', 'off']);
    assert.deepEqual(users[1], ['fleet', 'on', '>$(REDIS_PASSWORD)', '~tf*', '&*', '+@all'], 'one word per argument');
    assert.match(redis.containers[0].readinessProbe.exec.command.join(' '), /--tls --cacert .* --user fleet ping/);
    for (const name of ['coordinator', 'worker']) {
      const pod = (find('Deployment', name) ?? find('StatefulSet', name))!.spec.template.spec;
      const env: Obj[] = pod.containers[0].env;
      const names = env.map((e) => e.name);
      assert.ok(names.indexOf('REDIS_PASSWORD') < names.indexOf('REDIS_URL'), `${name}: $(REDIS_PASSWORD) is defined before REDIS_URL uses it`);
      assert.equal(env.find((e) => e.name === 'REDIS_URL')!.value, 'rediss://fleet:$(REDIS_PASSWORD)@$(REDIS_HOST)', name);
      const mounted = pod.containers[0].volumeMounts.find((m: Obj) => m.name === 'redis-tls');
      assert.equal(`${mounted.mountPath}/ca.crt`, '/etc/tensorfleet/redis-tls/ca.crt', `${name} mounts the CA where REDIS_TLS_CA_FILE points`);
      assert.equal(pod.volumes.find((v: Obj) => v.name === 'redis-tls').secret.secretName, 'tensorfleet-redis-tls', name);
    }
    // The TLS Secret is the one object the user makes (certificates are theirs): the README says how.
    assert.match(readFileSync(join(INFRA, 'README.md'), 'utf8'), /kubectl -n tensorfleet create secret generic tensorfleet-redis-tls/);
  });

  it('workers are a StatefulSet with one GPU per pod, the tensorflow backend and the shared config', () => {
    const sts = find('StatefulSet', 'worker')!;
    const c = sts.spec.template.spec.containers[0];
    assert.equal(c.resources.limits['nvidia.com/gpu'], 1);
    assert.equal(c.env.find((e: Obj) => e.name === 'FLEET_BACKEND').value, 'tensorflow');
    assert.equal(c.env.find((e: Obj) => e.name === 'WORKER_ID').valueFrom.fieldRef.fieldPath, 'metadata.name');
    assert.deepEqual(sts.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'worker' });
  });

  it('selectors match pod labels, services select pods, and env refs exist', () => {
    for (const d of all.filter((x) => x.kind === 'Deployment' || x.kind === 'StatefulSet')) {
      const labels = d.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(labels[k], v, `${d.kind}/${d.metadata.name}`);
      if (d.spec.serviceName) assert.ok(find('Service', d.spec.serviceName), `service ${d.spec.serviceName}`);
      for (const c of d.spec.template.spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) assert.ok(find('Secret', ref.name)?.stringData?.[ref.key] !== undefined, `${d.metadata.name}: secret ${ref.name} key ${ref.key}`);
        }
        for (const ref of c.envFrom ?? []) {
          if (ref.configMapRef) assert.ok(find('ConfigMap', ref.configMapRef.name), ref.configMapRef.name);
          if (ref.secretRef) assert.ok(find('Secret', ref.secretRef.name), ref.secretRef.name);
        }
      }
    }
    const pods = all.filter((x) => x.kind === 'Deployment' || x.kind === 'StatefulSet').map((d) => d.spec.template.metadata.labels);
    for (const svc of all.filter((x) => x.kind === 'Service')) {
      const sel = svc.spec.selector as Record<string, string>;
      assert.ok(pods.some((l) => Object.entries(sel).every(([k, v]) => l[k] === v)), `Service/${svc.metadata.name} selects a pod`);
    }
    const coord = find('Deployment', 'coordinator')!;
    assert.equal(coord.spec.template.spec.containers[0].ports[0].containerPort, 3000);
    assert.equal(find('Service', 'coordinator')!.spec.ports[0].port, 3000);
  });
});
