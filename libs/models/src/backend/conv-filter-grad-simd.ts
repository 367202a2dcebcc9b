import { tf } from './tf';
import { WasmOps } from './wasm-ops';
import { fleetKernels, heapOffset } from './simd/fleet-kernels';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;

/** Bytes of x and dy rows one call streams over; sized so they stay in L1/L2 (measured). */
const CHUNK_BYTES = 48 * 1024;
/** Largest dW tile (bytes) kept hot across row chunks. */
const TILE_BYTES = 128 * 1024;

/**
 * dW as a sum of outer products, cut into cache-sized pieces (fleet-kernels.wat): each 4×8
 * block of dW accumulates in registers over a chunk of output rows. Cin is padded to a
 * multiple of 4 and Cout to a multiple of 8 when needed. Returns null (caller keeps the
 * XNNPACK form) when the SIMD module can't reach the backend's heap or the conv is dilated.
 */
export function conv2dBackpropFilterSimd(ops: WasmOps, x: TensorInfo, dy: TensorInfo, info: Conv2DInfo): TensorInfo | null {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const kernels = fleetKernels(ops.backend);
  if (!kernels) return null;
  const [n, h, w, cin] = x.shape;
  const [, oh, ow, cout] = dy.shape;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const xp = ops.padChannels(x, 4);
  const dyp = ops.padChannels(dy, 8);
  const [cinP, coutP] = [xp.shape[3], dyp.shape[3]];
  const dw = ops.run('Fill', {}, { shape: [kh, kw, cinP, coutP], value: 0, dtype: 'float32' });
  const [xOff, dyOff, dwOff] = [xp, dyp, dw].map((t) => heapOffset(ops.backend, t));

  // Channel tiles: the dW tile fits TILE_BYTES; then output rows per chunk so that the
  // chunk's dy rows and the x rows they read fit CHUNK_BYTES.
  let coTile = coutP;
  let ciTile = cinP;
  while (kh * kw * ciTile * coTile * 4 > TILE_BYTES && (ciTile > 4 || coTile > 8)) {
    if (coTile >= 2 * ciTile && coTile > 8) coTile = Math.ceil(coTile / 16) * 8;
    else if (ciTile > 4) ciTile = Math.ceil(ciTile / 8) * 4;
    else coTile = Math.ceil(coTile / 16) * 8;
  }
  const rowBytes = ow * coTile * 4 + sh * w * ciTile * 4;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
  const rows = n * oh;
  for (let ci = 0; ci < cinP; ci += ciTile) {
    const ciEnd = Math.min(cinP, ci + ciTile);
    for (let co = 0; co < coutP; co += coTile) {
      const coEnd = Math.min(coutP, co + coTile);
      for (let r = 0; r < rows; r += rowsPerChunk) {
        kernels.conv2d_filter_grad_4x8(
          xOff, dyOff, dwOff, h, w, cinP, oh, ow, coutP, kh, kw, sh, sw,
          info.padInfo.top, info.padInfo.left, r, Math.min(rows, r + rowsPerChunk), ci, ciEnd, co, coEnd,
        );
      }
    }
  }
  if (cinP === cin && coutP === cout) return dw;
  return ops.slice(dw, [0, 0, 0, 0], [kh, kw, cin, cout]);
}
