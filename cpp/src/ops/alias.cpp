// AliasWithName (SPEC 5.9): an identity that names a blob for the export's graph passes.
#include "op_args.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

// Caffe2 shares the input's storage. Sharing is safe: in-place execution (inplace.h) never overwrites
// the output of an op that may return its input.
Tensors alias_with_name(const Tensors& in, const BoundArgs&) { return {in[0]}; }

}  // namespace

void register_alias_ops() {
  register_op({"AliasWithName", alias_with_name, {RequiredStr("name"), Bool("is_backward", false)}});
}

}  // namespace c2rt
