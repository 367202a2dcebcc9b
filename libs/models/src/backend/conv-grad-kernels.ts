import { tf } from './tf';
import { WasmOps } from './wasm-ops';
import { conv2dBackpropFilterSimd } from './conv-filter-grad-simd';
import { conv3x3Winograd, winogradApplies, winogradPaysOff } from './winograd-conv';
import { conv2dBackpropFilterWinograd } from './winograd-filter-grad';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;

/*
 * Both convolution gradients as forward convolutions, so they run through XNNPACK's
 * convolution at forward speed (the stock wasm Conv2DBackpropInput is a scalar loop about
 * ten times slower, and there is no Conv2DBackpropFilter at all).
 */

/**
 * dW[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh*s + kh - pt, ow*s + kw - pl, ci] · dy[n, oh, ow, co],
 * normally by the cache-blocked SIMD kernel (conv-filter-grad-simd.ts, 2–2.5× faster than
 * the XNNPACK form below); that one when the convolution is dilated or the heap isn't reachable.
 */
export function conv2dBackpropFilterNhwc(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  return (
    conv2dBackpropFilterWinograd(ops, x, dy, info) ??
    conv2dBackpropFilterSimd(ops, x, dy, info) ??
    conv2dBackpropFilterXnnpack(ops, x, dy, info)
  );
}

/**
 * dW through XNNPACK convolutions. Batch becomes the contraction channel: x as [Cin, H, W, N]
 * convolved with dy as filters [OH, OW, N, Cout] at dilation = stride gives [Cin, kh, kw, Cout].
 */
export function conv2dBackpropFilterXnnpack(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (kh === 1 && kw === 1 && info.padInfo.top === 0 && info.padInfo.left === 0) return dwPointwise(ops, x, dy, info);
  const { outHeight: oh, outWidth: ow } = info;
  const [, h, w] = x.shape;
  // Padded input rows actually read: (oh - 1) * sh + kh; the rest are cropped.
  const padH: [number, number] = [info.padInfo.top, (oh - 1) * sh + kh - h - info.padInfo.top];
  const padW: [number, number] = [info.padInfo.left, (ow - 1) * sw + kw - w - info.padInfo.left];
  const cropped = ops.cropForPads(x, padH, padW);
  const xT = ops.transpose(cropped.x, [3, 1, 2, 0]);
  const dyT = ops.transpose(dy, [1, 2, 0, 3]);
  const dwT = ops.conv2d(xT, dyT, [1, 1], [sh, sw], cropped.padH, cropped.padW);
  return ops.transpose(dwT, [1, 2, 0, 3]);
}

/** dx for any stride: the sub-pixel form when both strides are equal, else zero insertion. */
export function conv2dBackpropInputNhwc(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  if (sh === 1 && sw === 1) return dxWinograd(ops, dy, filter, info) ?? dxZeroInserted(ops, dy, filter, info);
  if (kh === 1 && kw === 1) return dxPointwiseStrided(ops, dy, filter, info);
  if (sh === sw) return dxSubPixel(ops, dy, filter, info);
  return dxZeroInserted(ops, dy, filter, info);
}

/**
 * 1×1: dW = xᵀ·dy, one GEMM over all pixels. The operand with more channels is transposed
 * into rows, the other becomes the packed weights (2–3× faster than the other way round or
 * than the dilated form, which splits the contraction into one tap per pixel).
 */
function dwPointwise(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  const [n, , , cin] = x.shape;
  const cout = dy.shape[3];
  const m = n * oh * ow;
  let xs = x;
  if (sh > 1 || sw > 1 || x.shape[1] !== oh || x.shape[2] !== ow) {
    xs = subsample(ops, x, sh, sw, oh, ow);
  }
  if (cin >= cout) {
    const rows = ops.reshape(ops.transpose(ops.reshape(xs, [m, cin]), [1, 0]), [cin, 1, 1, m]);
    const dw = ops.conv2d(rows, ops.reshape(dy, [1, 1, m, cout]), [1, 1], [1, 1], [0, 0], [0, 0]);
    return ops.reshape(dw, [1, 1, cin, cout]);
  }
  const rows = ops.reshape(ops.transpose(ops.reshape(dy, [m, cout]), [1, 0]), [cout, 1, 1, m]);
  const dwT = ops.conv2d(rows, ops.reshape(xs, [1, 1, m, cin]), [1, 1], [1, 1], [0, 0], [0, 0]);
  return ops.reshape(ops.transpose(ops.reshape(dwT, [cout, cin]), [1, 0]), [1, 1, cin, cout]);
}

/** x[:, ::sh, ::sw, :] cut to [n, oh, ow, c] by reshape + slice (wasm StridedSlice is ~10× slower). */
function subsample(ops: WasmOps, x: TensorInfo, sh: number, sw: number, oh: number, ow: number): TensorInfo {
  const [n, h, w, c] = x.shape;
  const fitted = ops.cropForPads(x, [0, oh * sh - h], [0, ow * sw - w]);
  let xf = fitted.x;
  if (fitted.padH[1] + fitted.padW[1] > 0) xf = ops.pad(xf, [[0, 0], fitted.padH, fitted.padW, [0, 0]]);
  const blocks = ops.reshape(xf, [n * oh, sh, ow, sw * c]);
  return ops.reshape(ops.slice(blocks, [0, 0, 0, 0], [n * oh, 1, ow, c]), [n, oh, ow, c]);
}

/**
 * dx = stride-1 convolution of dy (zero-inserted by the stride) with the spatially flipped,
 * in/out-swapped filter, padded so the output is exactly H × W. At stride s, (s²−1)/s² of the
 * multiplications hit inserted zeros, so strided convolutions use the forms below.
 */
function dxZeroInserted(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const [n, oh, ow, cout] = dy.shape;
  const { inHeight: h, inWidth: w } = info;
  let dyd = dy;
  if (sh > 1 || sw > 1) {
    // Zero-insertion as one pad: [n, oh, 1, ow, 1, c] → [n, oh, sh, ow, sw, c]; leaves sh-1 trailing rows.
    const r = ops.reshape(dy, [n, oh, 1, ow, 1, cout]);
    const p = ops.pad(r, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
    dyd = ops.reshape(p, [n, oh * sh, ow * sw, cout]);
  }
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;
  const padH: [number, number] = [padTop, h + kh - 1 - oh * sh - padTop];
  const padW: [number, number] = [padLeft, w + kw - 1 - ow * sw - padLeft];
  const cropped = ops.cropForPads(dyd, padH, padW);
  const flipped = kh > 1 || kw > 1 ? ops.reverse(filter, [0, 1]) : filter;
  const swapped = ops.transpose(flipped, [0, 1, 3, 2]);
  return ops.conv2d(cropped.x, swapped, [1, 1], [1, 1], cropped.padH, cropped.padW);
}

/** 3×3 stride 1: the same flipped, swapped convolution by Winograd, reading the filter in place. */
function dxWinograd(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo | null {
  if (!winogradApplies(info) || !winogradPaysOff(info.outChannels)) return null;
  const out = { height: info.inHeight, width: info.inWidth, padTop: 2 - info.padInfo.top, padLeft: 2 - info.padInfo.left };
  return conv3x3Winograd(ops, dy, filter, out, true);
}

/** 1×1 strided: dy·Wᵀ at dy's resolution, then scattered onto every s-th pixel. */
function dxPointwiseStrided(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w } = info;
  const [n, oh, ow] = dy.shape;
  const cin = filter.shape[2];
  const swapped = ops.transpose(filter, [0, 1, 3, 2]);
  const z = ops.conv2d(dy, swapped, [1, 1], [1, 1], [0, 0], [0, 0]);
  const r = ops.reshape(z, [n, oh, 1, ow, 1, cin]);
  const p = ops.pad(r, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]]);
  const spread = ops.reshape(p, [n, oh * sh, ow * sw, cin]);
  // Row i·s of `spread` is input row i·s − pad_top.
  const { top, left } = info.padInfo;
  const cropped = ops.cropForPads(spread, [-top, h + top - oh * sh], [-left, w + left - ow * sw]);
  if (cropped.padH[1] + cropped.padW[1] === 0) return cropped.x;
  return ops.pad(cropped.x, [[0, 0], cropped.padH, cropped.padW, [0, 0]]);
}

/**
 * Sub-pixel form: write input row y = u·s + p. Its taps are a ≡ (p + pad) mod s, reading
 * dy rows u + carry_p − t, so all s² phases are one stride-1 convolution of dy with a filter
 * of ⌈k/s⌉-ish taps and s²·Cin outputs, and one transpose interleaves the phases.
 * Multiplications: (taps per phase, padded to a common window)² · s² ≈ k², not k² · s².
 */
function dxSubPixel(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
  const s = info.strideHeight;
  const { inHeight: h, inWidth: w } = info;
  const [, oh, ow] = dy.shape;
  const [kh, kw, cin, cout] = filter.shape;
  const rows = phaseTaps(kh, s, info.padInfo.top);
  const cols = phaseTaps(kw, s, info.padInfo.left);
  const combined = ops.run('Fill', {}, { shape: [rows.span, cols.span, cout, s * s * cin], value: 0, dtype: 'float32' });
  ops.withHeap([filter, combined], ([wv, fv]) => {
    const fc = s * s * cin;
    for (let ph = 0; ph < s; ph++) {
      for (let th = 0; th < rows.span; th++) {
        const a = rows.tap(ph, th);
        if (a < 0) continue;
        for (let pw = 0; pw < s; pw++) {
          for (let tw = 0; tw < cols.span; tw++) {
            const b = cols.tap(pw, tw);
            if (b < 0) continue;
            const src = (a * kw + b) * cin * cout;
            const dst = (th * cols.span + tw) * cout * fc + (ph * s + pw) * cin;
            for (let ci = 0; ci < cin; ci++) {
              for (let co = 0; co < cout; co++) fv[dst + co * fc + ci] = wv[src + ci * cout + co];
            }
          }
        }
      }
    }
  });
  const u = Math.ceil(h / s);
  const v = Math.ceil(w / s);
  const padH: [number, number] = [-rows.lo, u - 1 + rows.lo + rows.span - 1 - (oh - 1)];
  const padW: [number, number] = [-cols.lo, v - 1 + cols.lo + cols.span - 1 - (ow - 1)];
  const cropped = ops.cropForPads(dy, padH, padW);
  const phases = ops.conv2d(cropped.x, combined, [1, 1], [1, 1], cropped.padH, cropped.padW);
  // Interleave the phases (wasm DepthToSpace is a scalar loop ~30× slower than this transpose).
  const [n] = dy.shape;
  const split = ops.reshape(phases, [n, u, v, s, s, cin]);
  const full = ops.reshape(ops.transpose(split, [0, 1, 3, 2, 4, 5]), [n, u * s, v * s, cin]);
  if (u * s === h && v * s === w) return full;
  return ops.slice(full, [0, 0, 0, 0], [n, h, w, cin]);
}

/**
 * For output phase p and window position τ, the filter tap it applies (or −1): input row
 * u·s + p reads dy row u + lo + τ with tap a = r_p + s·t, t = carry_p − (lo + τ).
 */
function phaseTaps(k: number, s: number, pad: number): { lo: number; span: number; tap(p: number, tau: number): number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let p = 0; p < s; p++) {
    const r = (p + pad) % s;
    const carry = Math.floor((p + pad) / s);
    const taps = r < k ? Math.ceil((k - r) / s) : 0;
    if (taps === 0) continue;
    lo = Math.min(lo, carry - taps + 1);
    hi = Math.max(hi, carry);
  }
  return {
    lo,
    span: hi - lo + 1,
    tap(p, tau) {
      const r = (p + pad) % s;
      const t = Math.floor((p + pad) / s) - (lo + tau);
      const a = r + s * t;
      return t >= 0 && a < k ? a : -1;
    },
  };
}

export function conv2dInfo(
  xShape: number[],
  filterShape: number[],
  attrs: { strides: number | [number, number]; pad: unknown; dimRoundingMode?: unknown; dilations?: number | [number, number] },
): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad as 'same',
    attrs.dimRoundingMode as 'floor' | undefined,
  );
}
