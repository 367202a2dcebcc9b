// Max and average pooling and their gradients on oneDNN (NHWC in place on the wasm heap).
//
// tfjs's MaxPoolGrad gets the input, not oneDNN's workspace (which window element won), so
// the gradient re-runs the training forward into scratch for the workspace, then the
// backward. Ties go to the first maximum in the window's row-major order (oneDNN's kernels
// replace only on a strictly greater value), as in the cpu reference.
#include <algorithm>
#include <map>
#include <tuple>

#include "dnnl-common.h"

namespace fleet {
namespace {

// N H W C OH OW KH KW SH SW PT PL PB PR max.
struct PoolKey {
  int32_t v[15];
  bool operator<(const PoolKey& o) const { return std::memcmp(v, o.v, sizeof v) < 0; }
};

struct Pool {
  memory::desc src, dst;
  std::unique_ptr<pooling_forward::primitive_desc> train_pd;
  pooling_forward infer;
  size_t infer_scratch = 0;
  bool bwd_ready = false;
  pooling_forward train;
  size_t train_scratch = 0;
  pooling_backward bwd;
  size_t bwd_scratch = 0;
  memory::desc workspace;
};

std::map<PoolKey, std::unique_ptr<Pool>> pools;

// Forward average pooling divides by the window's elements inside the image. tfjs's
// AvgPoolGrad (cpu, wasm) divides by the whole window, padding included, so the gradient does
// too (include_padding) and matches the reference: at padded borders that is tfjs's
// convention, not the exact derivative of its forward.
algorithm forward_alg(const PoolKey& k) {
  return k.v[14] ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
}
algorithm backward_alg(const PoolKey& k) {
  return k.v[14] ? algorithm::pooling_max : algorithm::pooling_avg_include_padding;
}

pooling_forward::desc forward_desc(const PoolKey& k, algorithm alg, prop_kind prop, const memory::desc& src,
                                   const memory::desc& dst) {
  const int32_t* v = k.v;
  return pooling_forward::desc(prop, alg, src, dst, {v[8], v[9]}, {v[6], v[7]}, {v[10], v[11]}, {v[12], v[13]});
}

Pool& pool_for(const PoolKey& k) {
  auto it = pools.find(k);
  if (it != pools.end()) return *it->second;
  const int32_t* v = k.v;
  auto p = std::make_unique<Pool>();
  p->src = memory::desc({v[0], v[3], v[1], v[2]}, dt::f32, tag::nhwc);
  p->dst = memory::desc({v[0], v[3], v[4], v[5]}, dt::f32, tag::nhwc);
  pooling_forward::primitive_desc pd(forward_desc(k, forward_alg(k), prop_kind::forward_inference, p->src, p->dst),
                                     user_scratchpad(), cpu());
  p->infer = pooling_forward(pd);
  p->infer_scratch = pd.scratchpad_desc().get_size();
  Pool& ref = *p;
  pools.emplace(k, std::move(p));
  return ref;
}

void backward_ready(const PoolKey& k, Pool& p) {
  if (p.bwd_ready) return;
  p.train_pd = std::make_unique<pooling_forward::primitive_desc>(
      forward_desc(k, backward_alg(k), prop_kind::forward_training, p.src, p.dst), user_scratchpad(), cpu());
  p.train = pooling_forward(*p.train_pd);
  p.train_scratch = p.train_pd->scratchpad_desc().get_size();
  p.workspace = p.train_pd->workspace_desc();
  const int32_t* v = k.v;
  pooling_backward::primitive_desc pd(
      pooling_backward::desc(backward_alg(k), p.src, p.dst, {v[8], v[9]}, {v[6], v[7]}, {v[10], v[11]}, {v[12], v[13]}),
      user_scratchpad(), cpu(), *p.train_pd);
  p.bwd = pooling_backward(pd);
  p.bwd_scratch = pd.scratchpad_desc().get_size();
  p.bwd_ready = true;
}

bool pool_key(napi_env env, napi_value v, PoolKey* k) {
  const int32_t* p;
  if (!i32(env, v, 15, "pooling parameters: expected an Int32Array of 15", &p)) return false;
  std::memcpy(k->v, p, sizeof k->v);
  return true;
}

// pool(params, x, y) → ran
napi_value PoolForward(napi_env env, napi_callback_info info) {
  napi_value a[3];
  PoolKey k;
  float *x, *y;
  size_t nx, ny;
  if (!args(env, info, a) || !pool_key(env, a[0], &k) || !f32(env, a[1], &x, &nx) || !f32(env, a[2], &y, &ny)) return nullptr;
  return guarded(env, [&] {
    Pool& p = pool_for(k);
    if (nx != elems(p.src) || ny != elems(p.dst))
      throw dnnl::error(dnnl_invalid_arguments, "pool: a buffer's length does not match the shape");
    p.infer.execute(strm(), {{DNNL_ARG_SRC, memory(p.src, cpu(), x)},
                             {DNNL_ARG_DST, memory(p.dst, cpu(), y)},
                             {DNNL_ARG_SCRATCHPAD, scratch(p.infer_scratch)}});
  });
}

// poolBackward(params, x | null (average pooling), dy, dx) → ran
napi_value PoolBackward(napi_env env, napi_callback_info info) {
  napi_value a[4];
  PoolKey k;
  float *x, *dy, *dx;
  size_t nx, ndy, ndx;
  if (!args(env, info, a) || !pool_key(env, a[0], &k) || !f32(env, a[1], &x, &nx, true) || !f32(env, a[2], &dy, &ndy) ||
      !f32(env, a[3], &dx, &ndx))
    return nullptr;
  return guarded(env, [&] {
    Pool& p = pool_for(k);
    backward_ready(k, p);
    const bool max = k.v[14] != 0;
    // Both passes share the scratchpad slot: size it for the larger first, so neither moves it.
    scratch(std::max(p.bwd_scratch, p.train_scratch));
    if ((max && nx != elems(p.src)) || ndy != elems(p.dst) || ndx != elems(p.src))
      throw dnnl::error(dnnl_invalid_arguments, "poolBackward: a buffer's length does not match the shape");
    std::unordered_map<int, memory> bwd = {{DNNL_ARG_DIFF_DST, memory(p.dst, cpu(), dy)},
                                           {DNNL_ARG_DIFF_SRC, memory(p.src, cpu(), dx)},
                                           {DNNL_ARG_SCRATCHPAD, scratch(p.bwd_scratch)}};
    if (max) {
      // Which element won each window: the training forward into scratch (its y is thrown away).
      memory ws(p.workspace, cpu(), arena.get(kBias, p.workspace.get_size()));
      memory y(p.dst, cpu(), arena.get(kDst, p.dst.get_size()));
      p.train.execute(strm(), {{DNNL_ARG_SRC, memory(p.src, cpu(), x)},
                               {DNNL_ARG_DST, y},
                               {DNNL_ARG_WORKSPACE, ws},
                               {DNNL_ARG_SCRATCHPAD, scratch(p.train_scratch)}});
      bwd[DNNL_ARG_WORKSPACE] = ws;
    }
    p.bwd.execute(strm(), bwd);
  });
}

}  // namespace

void export_pooling(napi_env env, napi_value exports) {
  const Fn fns[] = {{"pool", PoolForward}, {"poolBackward", PoolBackward}};
  export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}

}  // namespace fleet
