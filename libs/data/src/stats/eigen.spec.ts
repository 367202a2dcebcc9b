import { test } from 'node:test';
import assert from 'node:assert/strict';
import { symmetricEigen3 } from './eigen';
import { PixelStats } from './pixel-stats';

test('Jacobi eigen-decomposition reconstructs the matrix and matches a known spectrum', () => {
  // Independent reference: A = Q diag(5, 2, 0.5) Qᵀ with a rotation Q we choose.
  const ang = 0.7, bng = -0.3;
  const rz = [[Math.cos(ang), -Math.sin(ang), 0], [Math.sin(ang), Math.cos(ang), 0], [0, 0, 1]];
  const rx = [[1, 0, 0], [0, Math.cos(bng), -Math.sin(bng)], [0, Math.sin(bng), Math.cos(bng)]];
  const mul = (a: number[][], b: number[][]) => a.map((r) => [0, 1, 2].map((j) => r[0] * b[0][j] + r[1] * b[1][j] + r[2] * b[2][j]));
  const q = mul(rz, rx);
  const d = [5, 2, 0.5];
  const a = [0, 1, 2].map((i) => [0, 1, 2].map((j) => q[i][0] * d[0] * q[j][0] + q[i][1] * d[1] * q[j][1] + q[i][2] * d[2] * q[j][2]));
  const { eigval, eigvec } = symmetricEigen3(a);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(eigval[i] - d[i]) < 1e-10, `eigval ${i}: ${eigval[i]}`);
  for (let i = 0; i < 3; i++) {
    // A v = λ v, |v| = 1, and v parallel to column i of Q
    const v = eigvec[i];
    const av = [0, 1, 2].map((r) => a[r][0] * v[0] + a[r][1] * v[1] + a[r][2] * v[2]);
    for (let r = 0; r < 3; r++) assert.ok(Math.abs(av[r] - eigval[i] * v[r]) < 1e-10);
    const dot = v[0] * q[0][i] + v[1] * q[1][i] + v[2] * q[2][i];
    assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-10);
  }
});

test('PixelStats mean/std/covariance match a direct computation', () => {
  const px = new Uint8Array([10, 20, 30, 200, 100, 50, 0, 255, 128, 60, 60, 60]);
  const s = new PixelStats();
  s.add(px, 3);
  const vals = [0, 1, 2, 3].map((p) => [px[p * 3] / 255, px[p * 3 + 1] / 255, px[p * 3 + 2] / 255]);
  const mean = [0, 1, 2].map((c) => vals.reduce((a, v) => a + v[c], 0) / 4);
  const std = [0, 1, 2].map((c) => Math.sqrt(vals.reduce((a, v) => a + (v[c] - mean[c]) ** 2, 0) / 4));
  const cov01 = vals.reduce((a, v) => a + (v[0] - mean[0]) * (v[1] - mean[1]), 0) / 4;
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(s.mean()[c] - mean[c]) < 1e-12);
    assert.ok(Math.abs(s.std()[c] - std[c]) < 1e-12);
  }
  assert.ok(Math.abs(s.covariance()[0][1] - cov01) < 1e-12);
  const { eigval } = s.pca();
  const trace = std.reduce((a, x) => a + x * x, 0);
  assert.ok(Math.abs(eigval.reduce((a, x) => a + x, 0) - trace) < 1e-12);
});
