// Copy ops (SPEC 5.14): identities on values; the device copies move tensors where a GPU exists.
// An identity may return its input tensor itself: in-place execution (inplace.h) never overwrites the
// output of an op that may return its input, and no op kernel modifies its inputs.
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

Tensors identity(const Tensors& in, const BoundArgs&) { return {in[0]}; }

Tensors to_cpu(const Tensors& in, const BoundArgs&) { return {in[0].cpu()}; }

// Y = X on the current CUDA device, or X itself where no GPU is available.
Tensors to_gpu(const Tensors& in, const BoundArgs&) {
  if (!at::hasCUDA()) return {in[0]};
  return {in[0].to(at::Device(at::kCUDA))};
}

}  // namespace

void register_copy_ops() {
  for (const char* type : {"Copy", "Alias", "StopGradient", "CopyFromCPUInput"}) register_op({type, identity});
  register_op({"EnsureCPUOutput", to_cpu});
  register_op({"CopyGPUToCPU", to_cpu});
  register_op({"CopyCPUToGPU", to_gpu});
}

}  // namespace c2rt
