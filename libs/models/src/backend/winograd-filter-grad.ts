import { tf } from './tf';
import { WasmOps } from './wasm-ops';
import { heapOffset } from './simd/fleet-kernels';
import { winogradApplies, winogradKernels, winogradScratch } from './winograd-conv';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;

/**
 * dW of a 3×3 stride-1 convolution by Winograd F(2×2, 3×3) (simd/winograd.wat): the module
 * sums dL/dU = Σ_tiles (Bᵀ x B) ⊙ (A dy Aᵀ) over all 4×4 windows of x and 2×2 tiles of dy
 * (16 multiply-adds per tile and channel pair instead of 36), then dW = Gᵀ (dL/dU) G here.
 * Cin is zero-padded to a multiple of 4, Cout to 8. Null when it doesn't apply.
 */
export function conv2dBackpropFilterWinograd(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo | null {
  if (!winogradApplies(info)) return null;
  const kernels = winogradKernels(ops.backend);
  if (!kernels) return null;
  const [n, h, w, cin] = x.shape;
  const [, oh, ow, cout] = dy.shape;
  if (Math.min(n, h, w, cin, oh, ow, cout) <= 0) return null;
  const xp = ops.padChannels(x, 4);
  const dyp = ops.padChannels(dy, 8);
  const [cp, kp] = [xp.shape[3], dyp.shape[3]];
  const dUdL = ops.run('Fill', {}, { shape: [16, cp, kp], value: 0, dtype: 'float32' });
  const { block, v, m: yt, zero } = winogradScratch(ops, w, cp, kp);
  const dw = ops.alloc([3, 3, cin, cout]);
  const [xo, dyo, uo, vo, yo, zo] = [xp, dyp, dUdL, v, yt, zero].map((t) => heapOffset(ops.backend, t));
  kernels.winograd_filter_grad3x3(xo, dyo, uo, vo, yo, zo, n, h, w, cp, oh, ow, kp, info.padInfo.top, info.padInfo.left, block);
  ops.withHeap([dUdL, dw], ([u, out]) => inverseFilterTransform(u, out, cin, cout, cp, kp));
  return dw;
}

/**
 * dW[kh, kw, ci, co] = (Gᵀ X G)[kh][kw] for the 4×4 X = dL/dU[·][ci][co], with
 * Gᵀ = [[1, ½, ½, 0], [0, ½, −½, 0], [0, ½, ½, 1]] (the adjoint of U = G g Gᵀ).
 */
function inverseFilterTransform(u: Float32Array, dw: Float32Array, cin: number, cout: number, cp: number, kp: number): void {
  const plane = cp * kp;
  const t = new Float64Array(12);
  for (let ci = 0; ci < cin; ci++) {
    for (let co = 0; co < cout; co++) {
      const base = ci * kp + co;
      // t = Gᵀ X (3×4), then dW = t G (3×3).
      for (let j = 0; j < 4; j++) {
        const a = u[j * plane + base], b = u[(4 + j) * plane + base], c = u[(8 + j) * plane + base], d = u[(12 + j) * plane + base];
        t[j] = a + (b + c) / 2;
        t[4 + j] = (b - c) / 2;
        t[8 + j] = (b + c) / 2 + d;
      }
      for (let i = 0; i < 3; i++) {
        const a = t[4 * i], b = t[4 * i + 1], c = t[4 * i + 2], d = t[4 * i + 3];
        const out = (i * 3 * cin + ci) * cout + co;
        dw[out] = a + (b + c) / 2;
        dw[out + cin * cout] = (b - c) / 2;
        dw[out + 2 * cin * cout] = (b + c) / 2 + d;
      }
    }
  }
}
