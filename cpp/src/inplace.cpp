#include "inplace.h"

#include <algorithm>
#include <map>
#include <utility>

namespace c2rt {
namespace {

// Ops whose output 0 is storage allocated by the op itself, shared with no input or parameter.
// Sum of one input returns that input, so it counts only with two or more inputs.
const std::set<std::string> kFreshOutputOps{"Conv", "ConvTranspose", "SpatialBN", "AffineChannel",
                                            "FC",   "Add",           "Relu",      "Sum"};

bool fresh_output(const OperatorSpec& op) {
  return kFreshOutputOps.count(op.type) && (op.type != "Sum" || op.inputs.size() >= 2);
}

// Same shape, dtype and device: the element-wise result has input 0's shape and needs no promotion.
bool same_kind(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && a.device() == b.device();
}

std::optional<Tensors> relu_(const Tensors& in, const BoundArgs&) { return Tensors{in[0].relu_()}; }

// Only same-shape operands whose broadcast arguments leave B as it is; anything else (broadcasting,
// promotion, argument errors) goes through the regular op, which checks it.
std::optional<Tensors> add_(const Tensors& in, const BoundArgs& args) {
  const int64_t axis = args.i("axis");
  if (!same_kind(in[0], in[1]) || (args.b("broadcast") && axis != -1 && axis != 0)) return std::nullopt;
  return Tensors{in[0].add_(in[1])};
}

std::optional<Tensors> sum_(const Tensors& in, const BoundArgs&) {
  if (in.size() < 2) return std::nullopt;
  for (size_t k = 1; k < in.size(); ++k) {
    if (!same_kind(in[0], in[k])) return std::nullopt;
  }
  at::Tensor out = in[0];
  for (size_t k = 1; k < in.size(); ++k) out.add_(in[k]);
  return Tensors{out};
}

const std::map<std::string, InplaceFn> kInplaceKernels{{"Relu", relu_}, {"Add", add_}, {"Sum", sum_}};

}  // namespace

InplaceFn inplace_kernel(const std::string& type) {
  const auto it = kInplaceKernels.find(type);
  return it == kInplaceKernels.end() ? nullptr : it->second;
}

std::set<int> plan_inplace(const std::vector<OperatorSpec>& ops, const std::set<std::string>& protected_names) {
  using Version = std::pair<std::string, int>;  // (blob name, index of the op that wrote it)
  std::map<std::string, int> writer;
  std::map<Version, int> readers;
  std::vector<std::optional<Version>> first_input(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const OperatorSpec& op = ops[i];
    for (const std::string& name : op.inputs) {
      const auto it = writer.find(name);
      if (it != writer.end()) ++readers[{name, it->second}];
    }
    if (!op.inputs.empty()) {
      const auto it = writer.find(op.inputs[0]);
      if (it != writer.end()) first_input[i] = Version{op.inputs[0], it->second};
    }
    for (const std::string& name : op.outputs) writer[name] = static_cast<int>(i);
  }
  std::set<int> chosen;
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::optional<Version>& version = first_input[i];
    if (!inplace_kernel(ops[i].type) || !version || protected_names.count(version->first) ||
        readers[*version] != 1) {
      continue;
    }
    const OperatorSpec& producer = ops[version->second];
    const bool reads_own_output = std::find(producer.inputs.begin(), producer.inputs.end(), version->first) !=
                                  producer.inputs.end();
    if (fresh_output(producer) && producer.outputs[0] == version->first && !reads_own_output) {
      chosen.insert(static_cast<int>(i));
    }
  }
  return chosen;
}

}  // namespace c2rt
