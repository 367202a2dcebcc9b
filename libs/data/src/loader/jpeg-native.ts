import { join } from 'node:path';

/**
 * libjpeg-turbo, called synchronously from the decode thread (libs/data/native, built at install
 * when the libjpeg-turbo headers are there). It decodes a JPEG's crop at about a third of the CPU
 * sharp needs for the same pixels; sharp stays the decoder for everything else (PNG, CMYK JPEGs)
 * and for machines where the addon could not be built.
 *
 * FLEET_JPEG_DECODER: `auto` (default) uses the addon when it loads; `sharp` never does;
 * `native` requires it (an error saying how to build it otherwise).
 */
interface Addon {
  decodeRgb(jpeg: Uint8Array, left: number, top: number, width: number, height: number, out: Uint8Array): boolean;
}

export const ADDON_PATH = join(__dirname, '../../native/build/Release/fleet_jpeg.node');
const BUILD_HINT =
  'Build it with `npm run build:native` after installing the libjpeg-turbo headers (Debian/Ubuntu: apt-get install libjpeg62-turbo-dev; macOS: brew install jpeg-turbo).';

/** sharp's default limitInputPixels: the same images are refused whichever decoder runs. */
const PIXEL_LIMIT = 0x3fff * 0x3fff;

let addon: Addon | null = null;
let loadError = '';
/** The FLEET_JPEG_DECODER value `addon` was chosen for (re-read on change, so a spec can switch). */
let loadedFor: string | undefined;

function load(): Addon | null {
  const mode = process.env.FLEET_JPEG_DECODER || 'auto';
  if (mode === loadedFor) return addon;
  if (mode !== 'auto' && mode !== 'sharp' && mode !== 'native') {
    throw new Error(`FLEET_JPEG_DECODER=${mode}: use auto, sharp or native`);
  }
  loadedFor = mode;
  addon = null;
  if (mode === 'sharp') {
    loadError = 'FLEET_JPEG_DECODER=sharp';
    return addon;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(ADDON_PATH) as Addon;
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0];
    if (mode === 'native') throw new Error(`FLEET_JPEG_DECODER=native but the libjpeg-turbo addon does not load (${loadError}). ${BUILD_HINT}`);
  }
  return addon;
}

/** Which decoder JPEGs go through in this process, and why when it is sharp. */
export function jpegDecoder(): { name: 'libjpeg-turbo' | 'sharp'; reason?: string } {
  if (load()) return { name: 'libjpeg-turbo' };
  return { name: 'sharp', reason: loadedFor === 'sharp' ? loadError : `${loadError}. ${BUILD_HINT}` };
}

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

let scratch = new Uint8Array(0);
/** Decoded crops up to this size reuse one buffer per thread; bigger ones get their own. */
const SCRATCH_KEEP = 32 << 20;

/**
 * The `rect` of a JPEG (of size `size`, from its header) as packed RGB, or null when the addon is
 * not loaded, the bytes are not a JPEG, or its colour space (CMYK, YCCK) is left to sharp.
 * Throws on a corrupt image. The returned bytes are a per-thread buffer, valid until the next
 * call: use them before anything awaits.
 */
export function decodeJpegRgb(bytes: Uint8Array, size: { width: number; height: number }, rect: Rect): Uint8Array | null {
  const a = load();
  if (!a || bytes.length < 2 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  if (size.width * size.height > PIXEL_LIMIT) throw new Error('Input image exceeds pixel limit');
  const need = rect.width * rect.height * 3;
  let out: Uint8Array;
  if (need > SCRATCH_KEEP) out = new Uint8Array(need);
  else {
    if (scratch.length < need) scratch = new Uint8Array(Math.min(SCRATCH_KEEP, Math.max(need, 2 * scratch.length)));
    out = scratch;
  }
  if (!a.decodeRgb(bytes, rect.left, rect.top, rect.width, rect.height, out)) return null;
  return out.subarray(0, need);
}
