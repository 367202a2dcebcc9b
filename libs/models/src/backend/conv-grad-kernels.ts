import { tf } from './tf';
import { WasmOps } from './wasm-ops';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;

/*
 * Both convolution gradients as forward convolutions, so they run through XNNPACK's
 * convolution at forward speed (the stock wasm Conv2DBackpropInput is a scalar loop about
 * ten times slower, and there is no Conv2DBackpropFilter at all).
 */

/**
 * dW[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh*s + kh - pt, ow*s + kw - pl, ci] · dy[n, oh, ow, co].
 * Batch becomes the contraction channel: x as [Cin, H, W, N] convolved with dy as filters
 * [OH, OW, N, Cout] at dilation = stride gives [Cin, kh, kw, Cout].
 */
export function conv2dBackpropFilterNhwc(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
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

/**
 * dx = stride-1 convolution of dy (zero-inserted by the stride) with the spatially flipped,
 * in/out-swapped filter, padded so the output is exactly H × W.
 */
export function conv2dBackpropInputNhwc(ops: WasmOps, dy: TensorInfo, filter: TensorInfo, info: Conv2DInfo): TensorInfo {
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
