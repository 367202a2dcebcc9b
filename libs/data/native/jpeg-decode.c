/*
 * libjpeg-turbo called straight from a decode thread: one synchronous call decodes only the rows
 * and (iMCU-aligned) columns of the crop the augmentation keeps, into a buffer the caller owns.
 * Going through sharp/libvips for the same pixels costs about three times the CPU (a hop to the
 * libuv pool, libvips' own worker threads, a region pipeline and a fresh buffer per image), and
 * libvips always decodes every column. Pixels are libjpeg's default decode (islow IDCT, fancy
 * upsampling), which is what libvips asks for too; the specs check them against sharp byte for byte.
 */
#include <node_api.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct failure {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void on_error(j_common_ptr cinfo) {
  struct failure *f = (struct failure *)cinfo->err;
  cinfo->err->format_message(cinfo, f->message);
  longjmp(f->jump, 1);
}

/* Warnings (corrupt entropy data, premature end of file) fail the image, as sharp's default
 * failOn: 'warning' does: a damaged image is skipped and counted, never trained on. */
static void on_message(j_common_ptr cinfo, int level) {
  if (level < 0) on_error(cinfo);
}

static napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

static int get_bytes(napi_env env, napi_value v, unsigned char **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, length, &p, &buffer, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = (unsigned char *)p;
  return 1;
}

/*
 * decodeRgb(jpeg: Uint8Array, left, top, width, height, out: Uint8Array): boolean
 * Writes the width × height RGB crop at (left, top) to out, rows packed. Returns false (out
 * untouched) for colour spaces left to libvips (CMYK, YCCK: they need its colour management);
 * throws on a corrupt image or a crop outside it.
 */
static napi_value decode_rgb(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  unsigned char *jpeg, *out;
  size_t jpeg_length, out_length;
  int32_t rect[4];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return throw_error(env, "ERR_INVALID_ARG", "decodeRgb(jpeg, left, top, width, height, out) takes 6 arguments");
  if (!get_bytes(env, argv[0], &jpeg, &jpeg_length)) return throw_error(env, "ERR_INVALID_ARG", "decodeRgb: jpeg must be a Uint8Array");
  for (int i = 0; i < 4; i++) {
    if (napi_get_value_int32(env, argv[1 + i], &rect[i]) != napi_ok) return throw_error(env, "ERR_INVALID_ARG", "decodeRgb: left, top, width and height must be numbers");
  }
  if (!get_bytes(env, argv[5], &out, &out_length)) return throw_error(env, "ERR_INVALID_ARG", "decodeRgb: out must be a Uint8Array");
  const int32_t left = rect[0], top = rect[1], width = rect[2], height = rect[3];
  if (left < 0 || top < 0 || width <= 0 || height <= 0) return throw_error(env, "ERR_OUT_OF_RANGE", "decodeRgb: empty or negative crop");
  if (out_length < (size_t)width * (size_t)height * 3) return throw_error(env, "ERR_OUT_OF_RANGE", "decodeRgb: out is smaller than width * height * 3");

  struct jpeg_decompress_struct cinfo;
  struct failure err;
  /* volatile: assigned after setjmp and read after a longjmp back to it. */
  unsigned char *volatile row = NULL;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = on_error;
  err.mgr.emit_message = on_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    free(row);
    return throw_error(env, "FLEET_JPEG_CORRUPT", err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, jpeg, (unsigned long)jpeg_length);
  jpeg_read_header(&cinfo, TRUE);
  if (!(cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB || cinfo.jpeg_color_space == JCS_GRAYSCALE)) {
    jpeg_destroy_decompress(&cinfo);
    napi_get_boolean(env, 0, &result);
    return result;
  }
  if ((JDIMENSION)left + (JDIMENSION)width > cinfo.image_width || (JDIMENSION)top + (JDIMENSION)height > cinfo.image_height) {
    char message[160];
    snprintf(message, sizeof message, "decodeRgb: crop %dx%d at (%d, %d) lies outside the %ux%u image", width, height, left, top, cinfo.image_width, cinfo.image_height);
    jpeg_destroy_decompress(&cinfo);
    return throw_error(env, "ERR_OUT_OF_RANGE", message);
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  /* Columns: libjpeg starts the decoded span on an iMCU boundary and upsamples chroma at its two
   * ends as at an image edge, so the span reaches one iMCU past the crop on each side (where the
   * image goes on) to give the crop's edge pixels the values a whole-image decode gives them. */
  const JDIMENSION margin = (JDIMENSION)cinfo.max_h_samp_factor * DCTSIZE;
  const JDIMENSION right = (JDIMENSION)left + (JDIMENSION)width + margin;
  JDIMENSION x = (JDIMENSION)left > margin ? (JDIMENSION)left - margin : 0;
  JDIMENSION w = (right < cinfo.output_width ? right : cinfo.output_width) - x;
  if (w < cinfo.output_width) jpeg_crop_scanline(&cinfo, &x, &w);
  const size_t skip = (size_t)(left - (int32_t)x) * 3;
  if (top > 0) jpeg_skip_scanlines(&cinfo, (JDIMENSION)top);
  row = malloc((size_t)w * 3);
  if (!row) {
    jpeg_destroy_decompress(&cinfo);
    return throw_error(env, "ERR_MEMORY", "decodeRgb: out of memory for a row");
  }
  for (int32_t y = 0; y < height; y++) {
    JSAMPROW rows[1] = {row};
    jpeg_read_scanlines(&cinfo, rows, 1);
    memcpy(out + (size_t)y * (size_t)width * 3, row + skip, (size_t)width * 3);
  }
  /* The rows below the crop are never decoded (as libvips stops at the crop's bottom row too). */
  jpeg_destroy_decompress(&cinfo);
  free(row);
  napi_get_boolean(env, 1, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "decodeRgb", NAPI_AUTO_LENGTH, decode_rgb, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "decodeRgb", fn) != napi_ok) return NULL;
  return exports;
}
