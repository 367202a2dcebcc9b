// The SGD step of the `onednn` backend's trainers, in place on the wasm heap: one pass over a
// weight, its velocity and its gradient instead of the five to seven kernels (each with its own
// output) that tfjs runs for Sgd.apply(). Plain float arithmetic in apply()'s order: with
// -std=c++17 GCC contracts no a*b+c into an FMA and x86-64 has none by default, so every
// product and sum is rounded to fp32 as tfjs's kernels round it, and the bits are the same.
#include "dnnl-common.h"

namespace fleet {
namespace {

// sgdStep(w, v | null, g, lr, momentum, weightDecay | NaN, nesterov): w and v updated in place.
napi_value SgdStep(napi_env env, napi_callback_info info) {
  napi_value a[7];
  if (!args(env, info, a)) return nullptr;
  float *w, *v, *g;
  size_t nw, nv, ng;
  if (!f32(env, a[0], &w, &nw) || !f32(env, a[1], &v, &nv, true) || !f32(env, a[2], &g, &ng)) return nullptr;
  if (ng != nw || (v && nv != nw)) {
    napi_throw_range_error(env, nullptr, "sgdStep: weight, velocity and gradient must have the same length");
    return nullptr;
  }
  const float lr = static_cast<float>(number(env, a[3]));
  const float mu = static_cast<float>(number(env, a[4]));
  const double wd_arg = number(env, a[5]);
  const bool decay = wd_arg == wd_arg;  // NaN: this weight is not decayed
  const float wd = static_cast<float>(decay ? wd_arg : 0);
  bool nesterov = false;
  napi_get_value_bool(env, a[6], &nesterov);
  const size_t n = nw;
  if (v && decay && !nesterov) {
    for (size_t j = 0; j < n; j++) {
      const float d = g[j] + w[j] * wd;
      const float m = v[j] * mu + d;
      v[j] = m;
      w[j] = w[j] - m * lr;
    }
  } else {
    for (size_t j = 0; j < n; j++) {
      float d = decay ? g[j] + w[j] * wd : g[j];
      if (v) {
        const float m = v[j] * mu + d;
        v[j] = m;
        d = nesterov ? d + m * mu : m;
      }
      w[j] = w[j] - d * lr;
    }
  }
  return boolean(env, true);
}

}  // namespace

void export_sgd(napi_env env, napi_value exports) {
  const Fn fns[] = {{"sgdStep", SgdStep}};
  export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace fleet
