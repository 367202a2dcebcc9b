// Shared by the addon's kernel files: oneDNN's engine and stream, the scratch arena, and the
// N-API helpers that turn Float32Array views of the wasm heap into pointers.
#pragma once
#include <node_api.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace fleet {

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

inline engine& cpu() {
  static engine eng(engine::kind::cpu, 0);
  return eng;
}
inline stream& strm() {
  static stream s(cpu());
  return s;
}
inline std::string last_error;

// Scratch shared by every primitive: calls run one at a time on the JS thread, so one
// buffer per role (blocked source, weights, destination, oneDNN's scratchpad) is enough,
// grown to the largest shape seen instead of one set per cached shape.
struct Arena {
  std::vector<std::unique_ptr<float[]>> bufs;
  std::vector<size_t> sizes;
  void* get(int slot, size_t bytes) {
    if (static_cast<size_t>(slot) >= bufs.size()) {
      bufs.resize(slot + 1);
      sizes.resize(slot + 1, 0);
    }
    if (sizes[slot] < bytes) {
      bufs[slot].reset(new float[(bytes + 3) / 4 + 16]);
      sizes[slot] = bytes;
    }
    return bufs[slot].get();
  }
};
inline Arena arena;
enum Slot { kSrc, kWei, kDst, kScratch, kBias };

inline primitive_attr user_scratchpad() {
  primitive_attr a;
  a.set_scratchpad_mode(scratchpad_mode::user);
  return a;
}

inline memory scratch(size_t bytes) {
  bytes = bytes ? bytes : 1;
  return memory(memory::desc({static_cast<memory::dim>(bytes)}, dt::u8, tag::x), cpu(), arena.get(kScratch, bytes));
}

inline napi_value boolean(napi_env env, bool b) {
  napi_value out;
  napi_get_boolean(env, b, &out);
  return out;
}

inline bool throw_type(napi_env env, const char* what) {
  napi_throw_type_error(env, nullptr, what);
  return false;
}

// A Float32Array's data pointer and length (null for a JS null).
inline bool f32(napi_env env, napi_value v, float** data, size_t* len, bool nullable = false) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (nullable && (t == napi_null || t == napi_undefined)) {
    *data = nullptr;
    *len = 0;
    return true;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return throw_type(env, "expected a Float32Array");
  napi_typedarray_type type;
  void* p;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &type, len, &p, &ab, &off);
  if (type != napi_float32_array) return throw_type(env, "expected a Float32Array");
  *data = static_cast<float*>(p);
  return true;
}

// An Int32Array of exactly `n` elements (the parameters of a primitive); `what` names it in the error.
inline bool i32(napi_env env, napi_value v, size_t n, const char* what, const int32_t** data) {
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return throw_type(env, what);
  napi_typedarray_type type;
  size_t len;
  void* p;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &type, &len, &p, &ab, &off);
  if (type != napi_int32_array || len != n) return throw_type(env, what);
  *data = static_cast<const int32_t*>(p);
  return true;
}

template <size_t N>
inline bool args(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != N) return throw_type(env, "wrong number of arguments");
  return true;
}

inline size_t elems(const memory::desc& d) {
  size_t n = 1;
  for (auto x : d.dims()) n *= x;
  return n;
}

// Runs body; a oneDNN error (no primitive for this case) becomes `false` and lastError().
template <typename F>
inline napi_value guarded(napi_env env, F body) {
  try {
    body();
    strm().wait();
    return boolean(env, true);
  } catch (const dnnl::error& e) {
    last_error = e.what();
    return boolean(env, false);
  }
}

inline int32_t int_arg(napi_env env, napi_value v) {
  int32_t out = 0;
  napi_get_value_int32(env, v, &out);
  return out;
}

inline double number(napi_env env, napi_value v) {
  double out = 0;
  napi_get_value_double(env, v, &out);
  return out;
}

inline napi_value Str(napi_env env, const std::string& s) {
  napi_value out;
  napi_create_string_utf8(env, s.c_str(), s.size(), &out);
  return out;
}


// Each kernel file adds its functions to the addon's exports.
struct Fn {
  const char* name;
  napi_callback fn;
};
void export_fns(napi_env env, napi_value exports, const Fn* fns, size_t n);
void export_batch_norm(napi_env env, napi_value exports);
void export_pooling(napi_env env, napi_value exports);
void export_sgd(napi_env env, napi_value exports);

}  // namespace fleet
