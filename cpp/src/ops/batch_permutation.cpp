// BatchPermutation (SPEC 5.8): reorder the first dimension by an index, Y[n] = X[indices[n]].
#include "errors.h"
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

Tensors batch_permutation(const Tensors& in, const BoundArgs&) {
  const at::Tensor& x = in[0];
  const at::Tensor& indices = in[1];
  if (indices.dim() != 1) {
    throw OperatorInputError("BatchPermutation: indices shape=" + shape_of(indices) + ", expected 1-D");
  }
  if (x.dim() == 0 || x.size(0) != indices.size(0)) {
    throw OperatorInputError("BatchPermutation: X shape=" + shape_of(x) + ", expected first dimension " +
                             std::to_string(indices.size(0)) + " (len(indices))");
  }
  check_indices("BatchPermutation", "indices", indices, x.size(0), "the first dimension of X shape=" + shape_of(x));
  return {x.index_select(0, indices.to(at::kLong))};
}

}  // namespace

void register_batch_permutation_ops() { register_op({"BatchPermutation", batch_permutation, {}, {2, 2}}); }

}  // namespace c2rt
