import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TarWriter } from './tar-writer';
import { parseTar, groupSamples, TarEntry } from './tar-parser';
import { DataError } from '../errors';
import { Rng } from '../rng';

async function* chunked(buf: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  let i = 0;
  while (off < buf.length) {
    const n = sizes[i++ % sizes.length];
    yield buf.subarray(off, off + n);
    off += n;
  }
}

async function parseAll(buf: Buffer, sizes = [4096]): Promise<{ entries: TarEntry[]; error: unknown }> {
  const entries: TarEntry[] = [];
  try {
    for await (const e of parseTar(chunked(buf, sizes))) entries.push({ name: e.name, data: Buffer.from(e.data) });
    return { entries, error: null };
  } catch (error) {
    return { entries, error };
  }
}

function sampleEntries(): TarEntry[] {
  const rng = new Rng(7);
  const sizes = [0, 1, 511, 512, 513, 5000];
  const out: TarEntry[] = sizes.map((n, i) => ({ name: `k${i}.bin`, data: Buffer.from(Array.from({ length: n }, () => rng.int(256))) }));
  out.push({ name: `${'d'.repeat(120)}/${'f'.repeat(90)}.jpg`, data: Buffer.from('long name') });
  return out;
}

test('tar round-trip through our writer and streaming parser, any chunking', async () => {
  const entries = sampleEntries();
  const w = new TarWriter();
  for (const e of entries) w.add(e.name, e.data);
  const tar = w.finish();
  assert.equal(tar.length % 512, 0);
  for (const sizes of [[1], [7, 300], [512], [100000]]) {
    const { entries: got, error } = await parseAll(tar, sizes);
    assert.equal(error, null);
    assert.deepEqual(got.map((e) => e.name), entries.map((e) => e.name));
    for (let i = 0; i < got.length; i++) assert.ok(got[i].data.equals(entries[i].data), got[i].name);
  }
});

test('GNU tar reads what we write and we read what GNU tar writes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tf-tar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const w = new TarWriter();
  w.add('a.cls', Buffer.from('3'));
  w.add('a.jpg', Buffer.from('x'.repeat(700)));
  writeFileSync(join(dir, 'ours.tar'), w.finish());
  assert.equal(execFileSync('tar', ['-tf', join(dir, 'ours.tar')]).toString(), 'a.cls\na.jpg\n');
  assert.equal(execFileSync('tar', ['-xOf', join(dir, 'ours.tar'), 'a.cls']).toString(), '3');
  writeFileSync(join(dir, 'b.cls'), '12');
  writeFileSync(join(dir, 'b.png'), Buffer.alloc(1025, 9));
  execFileSync('tar', ['--format=ustar', '-cf', join(dir, 'theirs.tar'), '-C', dir, 'b.cls', 'b.png']);
  const { entries, error } = await parseAll(readFileSync(join(dir, 'theirs.tar')), [333]);
  assert.equal(error, null);
  assert.deepEqual(entries.map((e) => [e.name, e.data.length]), [['b.cls', 2], ['b.png', 1025]]);
  const samples = [];
  for await (const s of groupSamples(parseTar(chunked(readFileSync(join(dir, 'theirs.tar')), [4096])))) samples.push(s);
  assert.equal(samples.length, 1);
  assert.equal(samples[0].key, 'b');
  assert.equal(samples[0].files.get('cls')!.toString(), '12');
});

test('truncation anywhere yields the complete entries, then TAR_TRUNCATED', async () => {
  const entries = sampleEntries();
  const w = new TarWriter();
  for (const e of entries) w.add(e.name, e.data);
  const tar = w.finish();
  // entry boundaries: cut inside headers, inside data, exactly at a boundary, and inside the end blocks
  const starts: number[] = [];
  let off = 0;
  for (const e of entries) {
    starts.push(off);
    off += 512 + Math.ceil(e.data.length / 512) * 512;
  }
  for (const cut of [1, 100, starts[3] + 10, starts[4], starts[5] + 700, off]) {
    const { entries: got, error } = await parseAll(tar.subarray(0, cut), [999]);
    assert.ok(error instanceof DataError && error.code === 'TAR_TRUNCATED', `cut at ${cut}: ${String(error)}`);
    const complete = starts.filter((s, i) => s + 512 + Math.ceil(entries[i].data.length / 512) * 512 <= cut).length;
    assert.equal(got.length, complete, `cut at ${cut}`);
  }
});

test('a damaged header is TAR_CORRUPT, not a crash', async () => {
  const w = new TarWriter();
  w.add('a.cls', Buffer.from('1'));
  w.add('b.cls', Buffer.from('2'));
  const tar = Buffer.from(w.finish());
  tar[1024 + 3] ^= 0xff; // second header's name
  const { entries, error } = await parseAll(tar);
  assert.equal(entries.length, 1);
  assert.ok(error instanceof DataError && error.code === 'TAR_CORRUPT');
});
