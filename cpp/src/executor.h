// The net executor: a NetDef's ops resolved and bound once (type lookup, input/output counts,
// arguments), then run in order over a blob map (mirrors detectron2_export/caffe2/executor.py).
// Every error is rethrown with the op's place in the net: index, type, inputs and outputs.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "inplace.h"
#include "net_spec.h"
#include "profiler.h"
#include "registry.h"

namespace c2rt {

// Blob name -> tensor; an undefined tensor is an empty blob (created, never fed or computed).
using BlobMap = std::unordered_map<std::string, at::Tensor>;

struct BoundOp {
  int index = 0;
  const OpSchema* schema = nullptr;
  // What runs: the schema's type and function, or a fused chain's ("Conv+Add+Relu", fusion.h).
  std::string type;
  OpFn fn;
  BoundArgs args;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::vector<size_t> contiguous_inputs;  // the schema's, limited to the inputs this op names
  // Writes into input 0 (inplace.h); when it returns nullopt, schema->fn runs instead.
  InplaceFn inplace_fn = nullptr;
};

// "net 'name' op #3 'Conv' (inputs ['x', 'w'], outputs ['y'])".
std::string describe_op(const std::string& net_name, int index, const std::string& type,
                        const std::vector<std::string>& inputs, const std::vector<std::string>& outputs);

// Rethrows `error` as the same runtime error class with "<context>: " prefixed; ATen errors
// (c10::Error) and other exceptions become OperatorInputError.
[[noreturn]] void rethrow_with_context(const std::exception& error, const std::string& context);

class Net {
 public:
  // Binds every op; checks that each input is an existing blob, an external input or produced
  // by an earlier op. `inplace` lets element-wise ops overwrite dead intermediate blobs (inplace.h):
  // the external outputs are unchanged, but intermediate blobs may hold a later op's result.
  Net(const NetSpec& spec, const std::set<std::string>& existing_blobs, bool inplace = false);

  // Runs the ops in order on `blobs`. Ops without inputs (fills) create their outputs on the CPU;
  // they are moved to `device`, where every other op computes. An op's contiguous_inputs that are not
  // row-major are copied to row-major first and the copy replaces the blob. With `profile`, each op's
  // wall time and FLOPs are added to its type's entry. With `release_dead`, each blob the net computes
  // is erased after its last reader unless it is an external output (for a per-call blob map whose
  // only results are the external outputs): its memory goes back to the allocator for the next ones.
  void run(BlobMap& blobs, const at::Device& device, Profile* profile = nullptr, bool release_dead = false) const;

  // Installs a rewritten op list (load-time fusion, fusion.h) and re-plans the releases.
  void replace_ops(std::vector<BoundOp> ops);

  const std::string& name() const { return name_; }
  const std::vector<BoundOp>& ops() const { return ops_; }
  // Indices of the ops planned to run in place (empty unless created with `inplace`); a planned op
  // that fusion (fusion.h) later folds into a convolution no longer runs on its own.
  const std::vector<int64_t>& inplace_op_indices() const { return inplace_plan_; }

 private:
  void plan_release();

  std::string name_;
  std::vector<std::string> external_outputs_;
  std::vector<BoundOp> ops_;
  std::vector<int64_t> inplace_plan_;
  std::vector<std::vector<std::string>> release_after_;  // per op: blobs dead after it
};

}  // namespace c2rt
