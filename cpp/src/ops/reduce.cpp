// Reductions over listed axes (SPEC 5.15 ReduceMean; ReduceSum/Max/Min share the rule).
#include <set>

#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

using Reduction = at::Tensor (*)(const at::Tensor&, at::IntArrayRef, bool);

at::Tensor mean(const at::Tensor& x, at::IntArrayRef dims, bool keep) { return at::mean(x, dims, keep); }
at::Tensor sum(const at::Tensor& x, at::IntArrayRef dims, bool keep) { return at::sum(x, dims, keep); }
at::Tensor amax(const at::Tensor& x, at::IntArrayRef dims, bool keep) { return at::amax(x, dims, keep); }
at::Tensor amin(const at::Tensor& x, at::IntArrayRef dims, bool keep) { return at::amin(x, dims, keep); }

// Over `axes` (default: all), keeping them as size 1 if `keepdims`.
void register_reduction(const std::string& type, Reduction fn) {
  OpFn op = [type, fn](const Tensors& in, const BoundArgs& args) -> Tensors {
    const at::Tensor& x = in[0];
    std::set<int64_t> dims;
    if (args.has("axes")) {
      for (int64_t a : args.ints("axes")) dims.insert(normalize_axis(type, a, x.dim()));
    } else {
      for (int64_t d = 0; d < x.dim(); ++d) dims.insert(d);
    }
    if (dims.empty()) return {x.clone()};
    return {fn(x, std::vector<int64_t>(dims.begin(), dims.end()), args.b("keepdims"))};
  };
  register_op({type, op, {IntListOrNone("axes"), Bool("keepdims", true)}});
}

}  // namespace

void register_reduce_ops() {
  register_reduction("ReduceMean", mean);
  register_reduction("ReduceSum", sum);
  register_reduction("ReduceMax", amax);
  register_reduction("ReduceMin", amin);
}

}  // namespace c2rt
