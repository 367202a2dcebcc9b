import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Wakeup } from './wakeup';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst of signals is one wake-up after the coalescing delay; cancelled waiters are not kept', async () => {
  const w = new Wakeup(30);
  let woken = 0;
  const a = w.next();
  const b = w.next();
  void a.woken.then(() => woken++);
  void b.woken.then(() => woken++);
  const gone = w.next();
  gone.cancel();
  let goneWoken = false;
  void gone.woken.then(() => (goneWoken = true));
  for (let i = 0; i < 50; i++) w.signal();
  await tick(10);
  assert.equal(woken, 0, 'not before the coalescing delay');
  await tick(60);
  assert.equal(woken, 2, 'both waiters, once');
  assert.equal(goneWoken, false, 'a cancelled waiter is not woken');
  // A signal with nobody waiting does not carry over to a later waiter.
  w.signal();
  const late = w.next();
  let lateWoken = false;
  void late.woken.then(() => (lateWoken = true));
  await tick(60);
  assert.equal(lateWoken, false);
  w.wake();
  await tick(0);
  assert.equal(lateWoken, true, 'wake() wakes at once');
});
