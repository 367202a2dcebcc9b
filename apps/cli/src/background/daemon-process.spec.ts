// Real processes: bash loops started detached, found again by PID file and marker, stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isOurs, livePid, pidFile, readPid, startDaemon, stopDaemon } from './daemon-process';

function daemon(name: string, script: string) {
  const dir = mkdtempSync(join(tmpdir(), 'tf-daemon-'));
  const marker = `FLEET_CLUSTER_PROCESS=${dir}#${name}`;
  const pid = startDaemon({
    name, command: 'bash', args: ['-c', script], env: { ...process.env, FLEET_CLUSTER_PROCESS: `${dir}#${name}` },
    logFile: join(dir, `${name}.log`), runDir: join(dir, 'run'), marker,
  });
  return { dir, run: join(dir, 'run'), marker, pid };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a daemon runs in its own session, logs to its file and is found by PID file and marker', async () => {
  const d = daemon('looper', 'echo started; while true; do sleep 0.1; done');
  try {
    assert.equal(readPid(d.run, 'looper'), d.pid);
    assert.equal(livePid(d.run, 'looper', d.marker), d.pid);
    // its own session (setsid): a Ctrl-C to the terminal of `fleet up` does not reach it
    const sid = Number(readFileSync(`/proc/${d.pid}/stat`, 'utf8').split(') ')[1].split(' ')[3]);
    assert.equal(sid, d.pid);
    for (let i = 0; i < 50 && !readFileSync(join(d.dir, 'looper.log'), 'utf8').includes('started'); i++) await sleep(100);
    assert.match(readFileSync(join(d.dir, 'looper.log'), 'utf8'), /started/);
    // another cluster's marker, or a name that only starts the same, is not this process
    assert.equal(isOurs(d.pid, `FLEET_CLUSTER_PROCESS=${d.dir}#loop`), false);
    assert.equal(isOurs(d.pid, 'FLEET_CLUSTER_PROCESS=/elsewhere#looper'), false);
    assert.equal(await stopDaemon(d.run, 'looper', d.marker, 5000), 'stopped');
    assert.equal(existsSync(pidFile(d.run, 'looper')), false);
    assert.equal(isOurs(d.pid, d.marker), false);
  } finally {
    try { process.kill(d.pid, 'SIGKILL'); } catch { /* stopped */ }
  }
});

test('a daemon that ignores SIGTERM is killed after the grace period', async () => {
  const d = daemon('stubborn', "trap '' TERM; while true; do sleep 0.1; done");
  try {
    await sleep(300); // let bash install the trap
    const t0 = Date.now();
    assert.equal(await stopDaemon(d.run, 'stubborn', d.marker, 1000), 'killed');
    assert.ok(Date.now() - t0 >= 1000, 'killed before the grace period ended');
    assert.equal(isOurs(d.pid, d.marker), false);
  } finally {
    try { process.kill(d.pid, 'SIGKILL'); } catch { /* stopped */ }
  }
});

test('a recorded PID that is not ours (or gone) counts as not running and is never signalled', async () => {
  const d = daemon('short', 'exit 0');
  for (let i = 0; i < 50 && isOurs(d.pid, d.marker); i++) await sleep(100);
  assert.equal(livePid(d.run, 'short', d.marker), null);
  assert.equal(await stopDaemon(d.run, 'short', d.marker, 1000), 'not running');
  // The PID recycled by a process of someone else (this test's own): alive, but without the
  // marker, so it is not running as far as the cluster goes, and SIGTERM never reaches it.
  writeFileSync(pidFile(d.run, 'short'), `${process.pid}\n`);
  assert.equal(livePid(d.run, 'short', d.marker), null);
  assert.equal(await stopDaemon(d.run, 'short', d.marker, 1000), 'not running');
  assert.equal(existsSync(pidFile(d.run, 'short')), false);
});
