import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { DecodePool } from './decode-pool';
import { AugmentConfig, decodeAugment } from './augment';
import { Rng } from '../rng';

test('decode threads give the bits of an in-thread decode, JPEG and PNG, small and large', async () => {
  const rng = new Rng(4);
  const noise = (w: number, h: number) => Buffer.from(Array.from({ length: w * h * 3 }, () => rng.int(256)));
  const small = await sharp(noise(64, 48), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
  const large = await sharp(noise(400, 300), { raw: { width: 400, height: 300, channels: 3 } }).png().toBuffer();
  const cfg: AugmentConfig = { pipeline: 'resnet', inputSize: 32, mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] };
  const pool = new DecodePool(2, cfg, 6);
  try {
    const jobs = [small, large, small, large, small, large];
    await Promise.all(jobs.map((b, i) => pool.run(b, 100 + i, i)));
    for (const [i, b] of jobs.entries()) assert.deepEqual(pool.frame(i), await decodeAugment(b, 100 + i, cfg), `frame ${i}`);
  } finally {
    await pool.close();
  }
});
