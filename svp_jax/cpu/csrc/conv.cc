// 2-D convolutions on the CPU through oneDNN, as XLA FFI custom calls.
//
// XLA:CPU runs 3x3 convolutions through a generic kernel at about half the
// rate of oneDNN, the library PyTorch's CPU convolutions use (BUILD.md,
// "Performance"). These three handlers compute a convolution, its input
// gradient and its weight gradient with oneDNN, in the layouts flax's nn.Conv
// uses: NHWC activations and HWIO weights, float32. Built and wrapped by
// svp_jax/cpu/conv.py.
//
// Several XLA CPU devices may call a handler at once from their own threads,
// so primitives are cached under a lock and each calling thread passes its
// own scratchpad: oneDNN's default library-owned scratchpad is shared between
// primitives and unsafe for concurrent execution (8 devices computed wrong
// values with it).

#include <omp.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Tag = dnnl::memory::format_tag;

namespace {

enum class Kind { kForward, kBackwardData, kBackwardWeights };

constexpr auto kF32 = memory::data_type::f32;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// One convolution in oneDNN's logical dimension order (NCHW, OIHW).
struct Geometry {
  memory::dims src, weights, dst, strides, pad_lo, pad_hi;

  memory::desc Src() const { return {src, kF32, Tag::nhwc}; }
  memory::desc Dst() const { return {dst, kF32, Tag::nhwc}; }
  memory::desc PlainWeights() const { return {weights, kF32, Tag::hwio}; }
  memory::desc AnyWeights() const { return {weights, kF32, Tag::any}; }
};

// x, y: NHWC; w: HWIO.
Geometry MakeGeometry(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                      ffi::Span<const int64_t> y, int64_t stride_h,
                      int64_t stride_w, int64_t pad_h_lo, int64_t pad_h_hi,
                      int64_t pad_w_lo, int64_t pad_w_hi) {
  return Geometry{{x[0], x[3], x[1], x[2]}, {w[3], w[2], w[0], w[1]},
                  {y[0], y[3], y[1], y[2]}, {stride_h, stride_w},
                  {pad_h_lo, pad_w_lo},     {pad_h_hi, pad_w_hi}};
}

std::string CacheKey(Kind kind, const Geometry& g, int64_t threads) {
  std::ostringstream key;
  key << static_cast<int>(kind) << ':' << threads;
  for (const auto* dims :
       {&g.src, &g.weights, &g.dst, &g.strides, &g.pad_lo, &g.pad_hi}) {
    key << '|';
    for (auto d : *dims) key << d << ',';
  }
  return key.str();
}

dnnl::primitive_attr UserScratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A primitive and what running it needs: oneDNN picks its own weight layout
// (Tag::any), so plain HWIO weights are reordered into it (or, for the weight
// gradient, out of it) on every call; weights are small next to activations.
struct Plan {
  dnnl::primitive conv;
  memory::desc weights_md;
  bool reorder_weights = false;
  dnnl::reorder weights_reorder;
  memory::desc scratchpad_md;
};

template <typename PrimitiveDesc>
void FillPlan(const PrimitiveDesc& pd, const memory::desc& weights_md,
              const Geometry& g, bool weights_are_output, Plan& plan) {
  auto& engine = Engine();
  plan.weights_md = weights_md;
  plan.scratchpad_md = pd.scratchpad_desc();
  plan.reorder_weights = weights_md != g.PlainWeights();
  if (!plan.reorder_weights) return;
  plan.weights_reorder = dnnl::reorder(
      weights_are_output
          ? dnnl::reorder::primitive_desc(engine, weights_md, engine,
                                          g.PlainWeights())
          : dnnl::reorder::primitive_desc(engine, g.PlainWeights(), engine,
                                          weights_md));
}

std::shared_ptr<Plan> MakePlan(Kind kind, const Geometry& g) {
  auto& engine = Engine();
  auto plan = std::make_shared<Plan>();
  dnnl::convolution_forward::primitive_desc forward(
      engine, dnnl::prop_kind::forward_training,
      dnnl::algorithm::convolution_direct, g.Src(), g.AnyWeights(), g.Dst(),
      g.strides, g.pad_lo, g.pad_hi, UserScratchpad());
  if (kind == Kind::kForward) {
    plan->conv = dnnl::convolution_forward(forward);
    FillPlan(forward, forward.weights_desc(), g, false, *plan);
  } else if (kind == Kind::kBackwardData) {
    dnnl::convolution_backward_data::primitive_desc pd(
        engine, dnnl::algorithm::convolution_direct, g.Src(), g.AnyWeights(),
        g.Dst(), g.strides, g.pad_lo, g.pad_hi, forward, UserScratchpad());
    plan->conv = dnnl::convolution_backward_data(pd);
    FillPlan(pd, pd.weights_desc(), g, false, *plan);
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        engine, dnnl::algorithm::convolution_direct, g.Src(), g.AnyWeights(),
        g.Dst(), g.strides, g.pad_lo, g.pad_hi, forward, UserScratchpad());
    plan->conv = dnnl::convolution_backward_weights(pd);
    FillPlan(pd, pd.diff_weights_desc(), g, true, *plan);
  }
  return plan;
}

std::shared_ptr<Plan> GetPlan(Kind kind, const Geometry& g, int64_t threads) {
  static std::mutex mutex;
  static auto* plans =
      new std::unordered_map<std::string, std::shared_ptr<Plan>>();
  const std::string key = CacheKey(kind, g, threads);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = plans->find(key);
    if (it != plans->end()) return it->second;
  }
  auto plan = MakePlan(kind, g);  // outside the lock: creation is slow
  std::lock_guard<std::mutex> lock(mutex);
  return plans->emplace(key, plan).first->second;
}

// src and dst are the NHWC activations on either side of the convolution
// (for the backward-data call, src is the gradient being written); weights
// are HWIO (written by the backward-weights call).
ffi::Error Run(Kind kind, const Geometry& g, int64_t threads, float* src,
               float* weights, float* dst) {
  try {
    omp_set_num_threads(static_cast<int>(threads));
    auto plan = GetPlan(kind, g, threads);
    auto& engine = Engine();
    dnnl::stream stream(engine);
    memory src_m(g.Src(), engine, src);
    memory dst_m(g.Dst(), engine, dst);
    memory plain_weights(g.PlainWeights(), engine, weights);
    memory weights_m = plain_weights;
    if (plan->reorder_weights) {
      weights_m = memory(plan->weights_md, engine);
      if (kind != Kind::kBackwardWeights)
        plan->weights_reorder.execute(stream, plain_weights, weights_m);
    }
    thread_local std::vector<char> scratchpad;
    if (scratchpad.size() < plan->scratchpad_md.get_size())
      scratchpad.resize(plan->scratchpad_md.get_size());
    memory scratchpad_m(plan->scratchpad_md, engine, scratchpad.data());

    std::unordered_map<int, memory> args{{DNNL_ARG_SCRATCHPAD, scratchpad_m}};
    if (kind == Kind::kForward) {
      args.insert({{DNNL_ARG_SRC, src_m},
                   {DNNL_ARG_WEIGHTS, weights_m},
                   {DNNL_ARG_DST, dst_m}});
    } else if (kind == Kind::kBackwardData) {
      args.insert({{DNNL_ARG_DIFF_SRC, src_m},
                   {DNNL_ARG_WEIGHTS, weights_m},
                   {DNNL_ARG_DIFF_DST, dst_m}});
    } else {
      args.insert({{DNNL_ARG_SRC, src_m},
                   {DNNL_ARG_DIFF_WEIGHTS, weights_m},
                   {DNNL_ARG_DIFF_DST, dst_m}});
    }
    plan->conv.execute(stream, args);
    if (kind == Kind::kBackwardWeights && plan->reorder_weights)
      plan->weights_reorder.execute(stream, weights_m, plain_weights);
    stream.wait();
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal,
                      std::string("oneDNN convolution failed: ") + err.what());
  }
  return ffi::Error::Success();
}

using F32Buffer = ffi::Buffer<ffi::F32>;
using F32Result = ffi::ResultBuffer<ffi::F32>;

ffi::Error ForwardImpl(F32Buffer x, F32Buffer w, F32Result y, int64_t sh,
                       int64_t sw, int64_t phl, int64_t phh, int64_t pwl,
                       int64_t pwh, int64_t threads) {
  auto g = MakeGeometry(x.dimensions(), w.dimensions(), y->dimensions(), sh,
                        sw, phl, phh, pwl, pwh);
  return Run(Kind::kForward, g, threads, x.typed_data(), w.typed_data(),
             y->typed_data());
}

ffi::Error BackwardDataImpl(F32Buffer dy, F32Buffer w, F32Result dx,
                            int64_t sh, int64_t sw, int64_t phl, int64_t phh,
                            int64_t pwl, int64_t pwh, int64_t threads) {
  auto g = MakeGeometry(dx->dimensions(), w.dimensions(), dy.dimensions(), sh,
                        sw, phl, phh, pwl, pwh);
  return Run(Kind::kBackwardData, g, threads, dx->typed_data(),
             w.typed_data(), dy.typed_data());
}

ffi::Error BackwardWeightsImpl(F32Buffer x, F32Buffer dy, F32Result dw,
                               int64_t sh, int64_t sw, int64_t phl,
                               int64_t phh, int64_t pwl, int64_t pwh,
                               int64_t threads) {
  auto g = MakeGeometry(x.dimensions(), dw->dimensions(), dy.dimensions(), sh,
                        sw, phl, phh, pwl, pwh);
  return Run(Kind::kBackwardWeights, g, threads, x.typed_data(),
             dw->typed_data(), dy.typed_data());
}

// Two operands, one result, and the convolution's geometry and thread count.
auto Binding() {
  return ffi::Ffi::Bind()
      .Arg<F32Buffer>()
      .Arg<F32Buffer>()
      .Ret<F32Buffer>()
      .Attr<int64_t>("stride_h")
      .Attr<int64_t>("stride_w")
      .Attr<int64_t>("pad_h_lo")
      .Attr<int64_t>("pad_h_hi")
      .Attr<int64_t>("pad_w_lo")
      .Attr<int64_t>("pad_w_hi")
      .Attr<int64_t>("threads");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(SvpConvForward, ForwardImpl, Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(SvpConvBackwardData, BackwardDataImpl,
                              Binding());
XLA_FFI_DEFINE_HANDLER_SYMBOL(SvpConvBackwardWeights, BackwardWeightsImpl,
                              Binding());
