import { tf } from './tf';
import { WasmOps } from './wasm-ops';
import { heapOffset, instantiateOnHeap } from './simd/fleet-kernels';
import { WASM_BASE64 } from './simd/winograd.wasm';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;

/** Exports of simd/winograd.wat; pointers are byte offsets into the backend's heap. */
export interface WinogradKernels {
  winograd_conv3x3(...args: number[]): void;
  winograd_filter_grad3x3(...args: number[]): void;
}

/** The module on the backend's heap, or null when that isn't reachable. */
export function winogradKernels(backend: unknown): WinogradKernels | null {
  return instantiateOnHeap<WinogradKernels>(backend, WASM_BASE64);
}

/** FLEET_WINOGRAD=0 keeps XNNPACK for every convolution (to compare the two from one build). */
const ENABLED = process.env.FLEET_WINOGRAD !== '0';
/** Bytes of the transformed input and product blocks (V + M) per tile block: stays in L2. */
const BLOCK_BYTES = 256 * 1024;

/**
 * Floats of one transformed block (simd/winograd.wat): per tile 16 vectors per 4 channels
 * plus 64 bytes, so that tile rows 4 KiB apart don't all land in one L1 cache set.
 */
function scratchFloats(tiles: number, channels: number): number {
  return tiles * (16 * channels + 16);
}

/**
 * The working buffers both winograd.wat entry points take, for rows `w` wide, cp (input) and
 * kp (output) padded channels: tiles per block, the transformed-input and product blocks, and
 * a zero row standing in for the padding.
 */
export function winogradScratch(ops: WasmOps, w: number, cp: number, kp: number): { block: number; v: TensorInfo; m: TensorInfo; zero: TensorInfo } {
  const block = Math.max(4, Math.floor(BLOCK_BYTES / (16 * (cp + kp) * 4) / 4) * 4);
  return {
    block,
    v: ops.alloc([scratchFloats(block, cp)]),
    m: ops.alloc([scratchFloats(block, kp)]),
    zero: ops.run('Fill', {}, { shape: [Math.max(1, w) * cp], value: 0, dtype: 'float32' }),
  };
}

/** Whether the Winograd F(2×2, 3×3) kernel can compute this convolution. */
export function winogradApplies(info: Conv2DInfo): boolean {
  return (
    ENABLED &&
    info.filterHeight === 3 && info.filterWidth === 3 &&
    info.strideHeight === 1 && info.strideWidth === 1 &&
    info.dilationHeight === 1 && info.dilationWidth === 1 &&
    info.dataFormat === 'channelsLast'
  );
}

/**
 * Whether Winograd beats XNNPACK when the convolution sums over `channels` input channels:
 * below 8 the GEMMs are too short (ResNet-20's first layer, 3 → 16 channels at 32×32 × 64:
 * 5.2 ms against XNNPACK's 3.2).
 */
export function winogradPaysOff(channels: number): boolean {
  return channels >= 8;
}

/**
 * 3×3 stride-1 convolution by Winograd F(2×2, 3×3) (simd/winograd.wat): 16 multiply-adds per
 * 2×2 output tile and channel pair instead of 36. `flipped`: convolve with the spatially
 * flipped, in/out-swapped filter (filter [3, 3, K, C] for an x of C channels), which is the
 * input gradient at stride 1; `pads` are then the gradient's. Input channels not a multiple
 * of 4 are zero-padded; output channels are written exactly. Null when the heap isn't
 * reachable or the convolution is empty.
 */
export function conv3x3Winograd(
  ops: WasmOps,
  x: TensorInfo,
  filter: TensorInfo,
  out: { height: number; width: number; padTop: number; padLeft: number },
  flipped = false,
): TensorInfo | null {
  const kernels = winogradKernels(ops.backend);
  if (!kernels) return null;
  const [n, h, w, c] = x.shape;
  const k = flipped ? filter.shape[2] : filter.shape[3];
  if (Math.min(n, h, w, c, k, out.height, out.width) <= 0) return null;
  const xp = ops.padChannels(x, 4);
  const cp = xp.shape[3];
  const kp = Math.ceil(k / 8) * 8;
  const y = ops.alloc([n, out.height, out.width, k]);
  const u = ops.alloc([16, cp, kp]);
  const { block, v, m, zero } = winogradScratch(ops, w, cp, kp);
  ops.withHeap([filter, u], ([g, uv]) => filterTransform(g, uv, c, k, cp, kp, flipped));
  const [xo, uo, yo, vo, mo, zo] = [xp, u, y, v, m, zero].map((t) => heapOffset(ops.backend, t));
  kernels.winograd_conv3x3(xo, uo, yo, vo, mo, zo, n, h, w, cp, out.height, out.width, kp, k, out.padTop, out.padLeft, block);
  return y;
}

/**
 * U[e][ci][co] = (G g Gᵀ)[e] with G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]], for
 * g[kh][kw] = filter[kh, kw, ci, co] (or filter[2 − kh, 2 − kw, co, ci] when flipped); padded
 * rows and columns are zero. Computed in float64 and rounded once.
 */
function filterTransform(f: Float32Array, u: Float32Array, c: number, k: number, cp: number, kp: number, flipped: boolean): void {
  u.fill(0);
  const g = new Float64Array(9);
  const t = new Float64Array(12);
  const plane = cp * kp;
  for (let ci = 0; ci < c; ci++) {
    for (let co = 0; co < k; co++) {
      for (let tap = 0; tap < 9; tap++) {
        g[tap] = flipped ? f[((8 - tap) * k + co) * c + ci] : f[(tap * c + ci) * k + co];
      }
      // t = G g (4×3), then U = t Gᵀ (4×4).
      for (let j = 0; j < 3; j++) {
        const a = g[j], b = g[3 + j], d = g[6 + j];
        t[j] = a;
        t[3 + j] = (a + b + d) / 2;
        t[6 + j] = (a - b + d) / 2;
        t[9 + j] = d;
      }
      const base = ci * kp + co;
      for (let i = 0; i < 4; i++) {
        const a = t[3 * i], b = t[3 * i + 1], d = t[3 * i + 2];
        u[(4 * i) * plane + base] = a;
        u[(4 * i + 1) * plane + base] = (a + b + d) / 2;
        u[(4 * i + 2) * plane + base] = (a - b + d) / 2;
        u[(4 * i + 3) * plane + base] = d;
      }
    }
  }
}
