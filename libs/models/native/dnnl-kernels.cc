// oneDNN kernels for the `onednn` backend (libs/models/src/backend/onednn/). Every function
// reads and writes Float32Array views of the wasm backend's heap in place: the tensors stay
// NHWC in tfjs's memory, and only oneDNN's blocked copies (nChw8c and friends, which its
// jit:avx2 convolutions need; with NHWC given explicitly 2.6 falls back to im2col + GEMM,
// ~2x slower) live in this addon's scratch buffers. Primitives are cached per shape.
//
// A function returns false when oneDNN has no primitive for the case (the caller then runs
// the wasm kernel); lastError() says why.
#include <omp.h>

#include <map>

#include "dnnl-common.h"

namespace fleet {

void export_fns(napi_env env, napi_value exports, const Fn* fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, nullptr, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
}

namespace {

// One convolution shape: N H W Cin Cout KH KW OH OW SH SW DH DW PT PL PB PR, bias, relu.
struct ConvKey {
  int32_t v[19];
  bool operator<(const ConvKey& o) const { return std::memcmp(v, o.v, sizeof v) < 0; }
};

// A user (NHWC / HWIO) buffer and the layout the primitive wants; reorders cached both ways.
struct Operand {
  memory::desc user, want;
  bool same = true;
  reorder to_want, to_user;
  void init(const memory::desc& u, const memory::desc& w, bool input, bool output) {
    user = u;
    want = w;
    same = u == w;
    if (same) return;
    if (input) to_want = reorder(reorder::primitive_desc(cpu(), u, cpu(), w));
    if (output) to_user = reorder(reorder::primitive_desc(cpu(), w, cpu(), u));
  }
  // The memory the primitive reads or writes: the user's buffer or a scratch slot.
  memory bind(void* user_ptr, int slot, bool copy_in) {
    memory u(user, cpu(), user_ptr);
    if (same) return u;
    memory m(want, cpu(), arena.get(slot, want.get_size()));
    if (copy_in) to_want.execute(strm(), u, m);
    return m;
  }
  void copy_out(memory& m, void* user_ptr) {
    if (same) return;
    memory u(user, cpu(), user_ptr);
    to_user.execute(strm(), m, u);
  }
};

struct Conv {
  memory::dims strides, dilates, pad_l, pad_r;
  memory::desc src, wei, dst, bias;
  bool has_bias = false;
  std::unique_ptr<convolution_forward::primitive_desc> fwd_pd;
  convolution_forward fwd;
  Operand f_src, f_wei, f_dst;
  bool bwd_d_ready = false, bwd_w_ready = false;
  convolution_backward_data bwd_d;
  size_t bwd_d_scratch = 0;
  Operand d_dst, d_wei, d_src;
  convolution_backward_weights bwd_w;
  size_t bwd_w_scratch = 0;
  Operand w_src, w_dst, w_wei;
  size_t fwd_scratch = 0;
};

std::map<ConvKey, std::unique_ptr<Conv>> convs;

memory::desc any(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

// oneDNN's direct (jit) kernels, as opposed to im2col + GEMM or the reference loops.
bool direct(const char* impl) {
  std::string s(impl);
  return s.find("gemm") == std::string::npos && s.find("ref") == std::string::npos;
}

// Activations NHWC, as tfjs keeps them, when oneDNN has a direct kernel for that (AVX-512
// machines: jit:avx512_core reads nhwc); otherwise the layout it picks (AVX2: nChw8c, whose
// jit:avx2 kernels beat NHWC's im2col + GEMM by ~2x even after a reorder each way). The filter
// is always left to oneDNN: it is small, and its blocked form is what every direct kernel wants.
// setLayout('blocked') skips the NHWC attempt (specs run both paths on one machine).
bool force_blocked = false;

template <typename Make>
auto nhwc_if_direct(const memory::dims& a, const memory::dims& b, Make make) {
  memory::desc na(a, dt::f32, tag::nhwc), nb(b, dt::f32, tag::nhwc);
  if (!force_blocked) try {
    auto pd = make(na, nb);
    if (direct(pd.impl_info_str())) return pd;
  } catch (const dnnl::error&) {
    // no NHWC primitive at all: take the blocked one below
  }
  return make(any(a), any(b));
}

Conv& conv_for(const ConvKey& k) {
  auto it = convs.find(k);
  if (it != convs.end()) return *it->second;
  const int32_t* v = k.v;
  auto c = std::make_unique<Conv>();
  memory::dims src_d = {v[0], v[3], v[1], v[2]}, wei_d = {v[4], v[3], v[5], v[6]}, dst_d = {v[0], v[4], v[7], v[8]};
  c->strides = {v[9], v[10]};
  // oneDNN counts dilation from 0 (no gaps); tfjs from 1.
  c->dilates = {v[11] - 1, v[12] - 1};
  c->pad_l = {v[13], v[14]};
  c->pad_r = {v[15], v[16]};
  c->has_bias = v[17] != 0;
  c->src = memory::desc(src_d, dt::f32, tag::nhwc);
  c->wei = memory::desc(wei_d, dt::f32, tag::hwio);
  c->dst = memory::desc(dst_d, dt::f32, tag::nhwc);
  c->bias = memory::desc({v[4]}, dt::f32, tag::x);
  primitive_attr attr = user_scratchpad();
  if (v[18]) {
    post_ops ops;
    ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  Conv* cp = c.get();
  c->fwd_pd = std::make_unique<convolution_forward::primitive_desc>(
      nhwc_if_direct(src_d, dst_d, [&](const memory::desc& s, const memory::desc& d) {
        auto fd = cp->has_bias
            ? convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, s, any(wei_d),
                                        cp->bias, d, cp->strides, cp->dilates, cp->pad_l, cp->pad_r)
            : convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, s, any(wei_d), d,
                                        cp->strides, cp->dilates, cp->pad_l, cp->pad_r);
        return convolution_forward::primitive_desc(fd, attr, cpu());
      }));
  c->fwd = convolution_forward(*c->fwd_pd);
  c->fwd_scratch = c->fwd_pd->scratchpad_desc().get_size();
  c->f_src.init(c->src, c->fwd_pd->src_desc(), true, false);
  c->f_wei.init(c->wei, c->fwd_pd->weights_desc(), true, false);
  c->f_dst.init(c->dst, c->fwd_pd->dst_desc(), false, true);
  Conv& ref = *c;
  convs.emplace(k, std::move(c));
  return ref;
}

void backward_data_ready(Conv& c) {
  if (c.bwd_d_ready) return;
  auto pd = nhwc_if_direct(c.src.dims(), c.dst.dims(), [&](const memory::desc& s, const memory::desc& d) {
    auto desc = convolution_backward_data::desc(algorithm::convolution_direct, s, any(c.wei.dims()), d, c.strides,
                                                c.dilates, c.pad_l, c.pad_r);
    return convolution_backward_data::primitive_desc(desc, user_scratchpad(), cpu(), *c.fwd_pd);
  });
  c.bwd_d = convolution_backward_data(pd);
  c.bwd_d_scratch = pd.scratchpad_desc().get_size();
  c.d_dst.init(c.dst, pd.diff_dst_desc(), true, false);
  c.d_wei.init(c.wei, pd.weights_desc(), true, false);
  c.d_src.init(c.src, pd.diff_src_desc(), false, true);
  c.bwd_d_ready = true;
}

void backward_weights_ready(Conv& c) {
  if (c.bwd_w_ready) return;
  auto pd = nhwc_if_direct(c.src.dims(), c.dst.dims(), [&](const memory::desc& s, const memory::desc& d) {
    auto desc = convolution_backward_weights::desc(algorithm::convolution_direct, s, any(c.wei.dims()), d, c.strides,
                                                   c.dilates, c.pad_l, c.pad_r);
    return convolution_backward_weights::primitive_desc(desc, user_scratchpad(), cpu(), *c.fwd_pd);
  });
  c.bwd_w = convolution_backward_weights(pd);
  c.bwd_w_scratch = pd.scratchpad_desc().get_size();
  c.w_src.init(c.src, pd.src_desc(), true, false);
  c.w_dst.init(c.dst, pd.diff_dst_desc(), true, false);
  c.w_wei.init(c.wei, pd.diff_weights_desc(), false, true);
  c.bwd_w_ready = true;
}

// ---- N-API glue ------------------------------------------------------------------------

bool key(napi_env env, napi_value v, ConvKey* k) {
  const int32_t* p;
  if (!i32(env, v, 19, "convolution parameters: expected an Int32Array of 19", &p)) return false;
  std::memcpy(k->v, p, sizeof k->v);
  return true;
}

// conv2d(params, x, filter, bias | null, y) → ran
napi_value Conv2d(napi_env env, napi_callback_info info) {
  napi_value a[5];
  ConvKey k;
  float *x, *w, *b, *y;
  size_t nx, nw, nb, ny;
  if (!args(env, info, a) || !key(env, a[0], &k) || !f32(env, a[1], &x, &nx) || !f32(env, a[2], &w, &nw) ||
      !f32(env, a[3], &b, &nb, true) || !f32(env, a[4], &y, &ny))
    return nullptr;
  return guarded(env, [&] {
    Conv& c = conv_for(k);
    if (nx != elems(c.src) || nw != elems(c.wei) || ny != elems(c.dst) || (c.has_bias && nb != elems(c.bias)))
      throw dnnl::error(dnnl_invalid_arguments, "conv2d: a buffer's length does not match the shape");
    memory S = c.f_src.bind(x, kSrc, true), W = c.f_wei.bind(w, kWei, true), D = c.f_dst.bind(y, kDst, false);
    std::unordered_map<int, memory> m = {{DNNL_ARG_SRC, S}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DST, D},
                                         {DNNL_ARG_SCRATCHPAD, scratch(c.fwd_scratch)}};
    if (c.has_bias) m[DNNL_ARG_BIAS] = memory(c.bias, cpu(), b);
    c.fwd.execute(strm(), m);
    c.f_dst.copy_out(D, y);
  });
}

// conv2dBackpropInput(params, dy, filter, dx) → ran
napi_value Conv2dBackpropInput(napi_env env, napi_callback_info info) {
  napi_value a[4];
  ConvKey k;
  float *dy, *w, *dx;
  size_t ndy, nw, ndx;
  if (!args(env, info, a) || !key(env, a[0], &k) || !f32(env, a[1], &dy, &ndy) || !f32(env, a[2], &w, &nw) ||
      !f32(env, a[3], &dx, &ndx))
    return nullptr;
  return guarded(env, [&] {
    Conv& c = conv_for(k);
    backward_data_ready(c);
    if (ndy != elems(c.dst) || nw != elems(c.wei) || ndx != elems(c.src))
      throw dnnl::error(dnnl_invalid_arguments, "conv2dBackpropInput: a buffer's length does not match the shape");
    memory DD = c.d_dst.bind(dy, kDst, true), W = c.d_wei.bind(w, kWei, true), DS = c.d_src.bind(dx, kSrc, false);
    c.bwd_d.execute(strm(), {{DNNL_ARG_DIFF_DST, DD}, {DNNL_ARG_WEIGHTS, W}, {DNNL_ARG_DIFF_SRC, DS},
                             {DNNL_ARG_SCRATCHPAD, scratch(c.bwd_d_scratch)}});
    c.d_src.copy_out(DS, dx);
  });
}

// conv2dBackpropFilter(params, x, dy, dw) → ran
napi_value Conv2dBackpropFilter(napi_env env, napi_callback_info info) {
  napi_value a[4];
  ConvKey k;
  float *x, *dy, *dw;
  size_t nx, ndy, ndw;
  if (!args(env, info, a) || !key(env, a[0], &k) || !f32(env, a[1], &x, &nx) || !f32(env, a[2], &dy, &ndy) ||
      !f32(env, a[3], &dw, &ndw))
    return nullptr;
  return guarded(env, [&] {
    Conv& c = conv_for(k);
    backward_weights_ready(c);
    if (nx != elems(c.src) || ndy != elems(c.dst) || ndw != elems(c.wei))
      throw dnnl::error(dnnl_invalid_arguments, "conv2dBackpropFilter: a buffer's length does not match the shape");
    memory S = c.w_src.bind(x, kSrc, true), DD = c.w_dst.bind(dy, kDst, true), DW = c.w_wei.bind(dw, kWei, false);
    c.bwd_w.execute(strm(), {{DNNL_ARG_SRC, S}, {DNNL_ARG_DIFF_DST, DD}, {DNNL_ARG_DIFF_WEIGHTS, DW},
                             {DNNL_ARG_SCRATCHPAD, scratch(c.bwd_w_scratch)}});
    c.w_wei.copy_out(DW, dw);
  });
}

// matmul(transA, transB, M, N, K, a, b, c): row-major C[M×N] = op(A) · op(B), oneDNN's sgemm.
napi_value Matmul(napi_env env, napi_callback_info info) {
  napi_value a[8];
  if (!args(env, info, a)) return nullptr;
  bool ta, tb;
  napi_get_value_bool(env, a[0], &ta);
  napi_get_value_bool(env, a[1], &tb);
  int32_t M = int_arg(env, a[2]), N = int_arg(env, a[3]), K = int_arg(env, a[4]);
  float *A, *B, *C;
  size_t na, nb, nc;
  if (!f32(env, a[5], &A, &na) || !f32(env, a[6], &B, &nb) || !f32(env, a[7], &C, &nc)) return nullptr;
  if (na != size_t(M) * K || nb != size_t(K) * N || nc != size_t(M) * N) {
    throw_type(env, "matmul: a buffer's length does not match M, N, K");
    return nullptr;
  }
  dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.f, A, ta ? M : K, B, tb ? K : N, 0.f, C, N);
  if (st != dnnl_success) last_error = "dnnl_sgemm failed";
  return boolean(env, st == dnnl_success);
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  napi_value a[1];
  if (!args(env, info, a)) return nullptr;
  int32_t n = int_arg(env, a[0]);
  if (n < 1) {
    napi_throw_range_error(env, nullptr, "setThreads: expected a thread count of at least 1");
    return nullptr;
  }
  omp_set_num_threads(n);
  return nullptr;
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value out;
  napi_create_int32(env, omp_get_max_threads(), &out);
  return out;
}

napi_value Version(napi_env env, napi_callback_info) {
  const dnnl_version_t* v = dnnl_version();
  return Str(env, std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
}

napi_value LastError(napi_env env, napi_callback_info) { return Str(env, last_error); }

// setLayout('auto' | 'blocked'): drops the cached primitives, which were made for the other.
napi_value SetLayout(napi_env env, napi_callback_info info) {
  napi_value a[1];
  if (!args(env, info, a)) return nullptr;
  char buf[16] = {0};
  size_t len = 0;
  napi_get_value_string_utf8(env, a[0], buf, sizeof buf, &len);
  std::string mode(buf, len);
  if (mode != "auto" && mode != "blocked") {
    napi_throw_range_error(env, nullptr, "setLayout: expected 'auto' or 'blocked'");
    return nullptr;
  }
  force_blocked = mode == "blocked";
  convs.clear();
  return nullptr;
}

// Bytes of this addon's scratch (blocked copies, oneDNN's scratchpads): memory outside the wasm heap.
napi_value ScratchBytes(napi_env env, napi_callback_info) {
  double total = 0;
  for (size_t b : arena.sizes) total += b;
  napi_value out;
  napi_create_double(env, total, &out);
  return out;
}

// convImpl(params, which): the implementation oneDNN chose ("jit:avx2", "gemm:jit", …), for the docs and specs.
napi_value ConvImpl(napi_env env, napi_callback_info info) {
  napi_value a[1];
  ConvKey k;
  if (!args(env, info, a) || !key(env, a[0], &k)) return nullptr;
  try {
    return Str(env, conv_for(k).fwd_pd->impl_info_str());
  } catch (const dnnl::error& e) {
    last_error = e.what();
    return Str(env, "");
  }
}

napi_value Init(napi_env env, napi_value exports) {
  // One worker process per core is the data-parallel layout: one thread unless told otherwise.
  omp_set_num_threads(1);
  const Fn fns[] = {{"conv2d", Conv2d},           {"conv2dBackpropInput", Conv2dBackpropInput},
                    {"conv2dBackpropFilter", Conv2dBackpropFilter}, {"matmul", Matmul},
                    {"setThreads", SetThreads},   {"threads", Threads},
                    {"version", Version},         {"lastError", LastError},
                    {"convImpl", ConvImpl},       {"setLayout", SetLayout},
                    {"scratchBytes", ScratchBytes}};
  export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
  export_batch_norm(env, exports);
  export_pooling(env, exports);
  export_sgd(env, exports);
  return exports;
}

}  // namespace
}  // namespace fleet

NAPI_MODULE(NODE_GYP_MODULE_NAME, fleet::Init)
