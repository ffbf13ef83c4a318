#include "fusion.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include <ATen/Parallel.h>

#include "conv_pool_args.h"

namespace c2rt {
namespace {

using Version = std::pair<std::string, size_t>;  // (blob name, position of the op that wrote it)

const std::optional<c10::OperatorHandle>& pointwise_op(const char* overload) {
  static const std::optional<c10::OperatorHandle> unary =
      c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", ""});
  static const std::optional<c10::OperatorHandle> binary =
      c10::Dispatcher::singleton().findSchema({"mkldnn::_convolution_pointwise", "binary"});
  return std::string(overload).empty() ? unary : binary;
}

const std::optional<c10::OperatorHandle>& reorder_op() {
  static const std::optional<c10::OperatorHandle> op =
      c10::Dispatcher::singleton().findSchema({"mkldnn::_reorder_convolution_weight", ""});
  return op;
}

at::Tensor call(const c10::OperatorHandle& op, std::vector<c10::IValue> stack) {
  op.callBoxed(&stack);
  return stack.at(0).toTensor();
}

bool dense_float32(const at::Tensor& t, int64_t dim) {
  return t.defined() && t.dim() == dim && t.scalar_type() == at::kFloat && t.device().is_cpu();
}

bool dense_input(const at::Tensor& x, int64_t channels) {
  return dense_float32(x, 4) && x.size(1) == channels && x.numel() > 0 &&
         (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

// Whether float32 at::conv2d runs oneDNN for these shapes (ConvParams::use_mkldnn in
// aten/src/ATen/native/Convolution.cpp); otherwise it runs its native kernel, and so does the fused op,
// to keep the unfused net's results.
bool conv2d_uses_onednn(const at::Tensor& x, const at::Tensor& w, const Geometry& geo, int64_t group) {
  if (!at::globalContext().userEnabledMkldnn()) return false;
  const bool one_by_one = w.size(-1) == 1 && w.size(-2) == 1;
  const auto not_one = [](const std::vector<int64_t>& v) {
    return std::any_of(v.begin(), v.end(), [](int64_t e) { return e != 1; });
  };
  if (one_by_one && !(not_one(geo.stride) || not_one(geo.dilation) || x.size(0) >= 16 || at::get_num_threads() > 1)) {
    return false;
  }
  return group > 1 || (w.size(-1) > 3 && w.size(-2) > 3) || x.size(0) > 1 || x.numel() > 20480;
}

struct Chain {
  const BoundOp* conv = nullptr;
  const BoundOp* add = nullptr;
  const BoundOp* relu = nullptr;
  size_t other_slot = 0;  // the Add input that is not the Conv output
  size_t last = 0;        // position of the chain's last op
  Geometry geo;
};

// The positions of the ops reading each blob version.
std::map<Version, std::vector<size_t>> readers_of(const std::vector<BoundOp>& ops) {
  std::map<std::string, size_t> writer;
  std::map<Version, std::vector<size_t>> readers;
  for (size_t pos = 0; pos < ops.size(); ++pos) {
    for (const std::string& name : ops[pos].inputs) {
      const auto it = writer.find(name);
      if (it != writer.end()) readers[{name, it->second}].push_back(pos);
    }
    for (const std::string& name : ops[pos].outputs) writer[name] = pos;
  }
  return readers;
}

// The position of the only op reading output 0 of op `pos` (once), unless that blob is protected.
std::optional<size_t> sole_reader(const std::vector<BoundOp>& ops, const std::map<Version, std::vector<size_t>>& readers,
                                  size_t pos, const std::set<std::string>& protected_names) {
  const std::string& name = ops[pos].outputs[0];
  const auto it = readers.find({name, pos});
  if (protected_names.count(name) || it == readers.end() || it->second.size() != 1) return std::nullopt;
  const std::vector<std::string>& in = ops[it->second[0]].inputs;
  if (std::count(in.begin(), in.end(), name) != 1) return std::nullopt;
  return it->second[0];
}

bool plain_add(const BoundOp& op) {
  return op.type == "Add" && op.outputs.size() == 1 && !op.args.b("broadcast") && op.args.s("axis_str").empty() &&
         op.args.s("order") == "NCHW";
}

bool parameter(const std::string& name, const BlobMap& params, const std::set<std::string>& written, int64_t dim) {
  const auto it = params.find(name);
  return !written.count(name) && it != params.end() && dense_float32(it->second, dim);
}

std::optional<Geometry> fusable_geometry(const BoundOp& conv, const at::Tensor& w) {
  Geometry geo;
  try {
    geo = resolve_geometry("Conv", 2, conv.args);
  } catch (const std::exception&) {
    return std::nullopt;  // the regular op reports it when it runs
  }
  if (!geo.symmetric_pads() || (geo.kernel && w.sizes().slice(2).vec() != *geo.kernel)) return std::nullopt;
  return geo;
}

std::vector<Chain> find_chains(const std::vector<BoundOp>& ops, const BlobMap& params,
                               const std::set<std::string>& protected_names) {
  std::set<std::string> written;
  for (const BoundOp& op : ops) written.insert(op.outputs.begin(), op.outputs.end());
  const auto readers = readers_of(ops);
  std::vector<Chain> chains;
  for (size_t pos = 0; pos < ops.size(); ++pos) {
    const BoundOp& op = ops[pos];
    if (op.type != "Conv" || op.outputs.size() != 1 || !parameter(op.inputs[1], params, written, 4)) continue;
    if (op.inputs.size() > 2 && !parameter(op.inputs[2], params, written, 1)) continue;
    const std::optional<Geometry> geo = fusable_geometry(op, params.at(op.inputs[1]));
    if (!geo) continue;
    Chain chain{&op, nullptr, nullptr, 0, pos, *geo};
    std::optional<size_t> next = sole_reader(ops, readers, pos, protected_names);
    if (next && plain_add(ops[*next])) {
      const BoundOp& add = ops[*next];
      chain.other_slot = add.inputs[0] == op.outputs[0] ? 1 : 0;
      if (add.inputs[chain.other_slot] != op.outputs[0]) {
        chain.add = &add;
        chain.last = *next;
        next = sole_reader(ops, readers, *next, protected_names);
      } else {
        next.reset();
      }
    }
    if (next && ops[*next].type == "Relu") {
      chain.relu = &ops[*next];
      chain.last = *next;
    }
    chains.push_back(chain);
  }
  return chains;
}

std::vector<int64_t> output_shape(const at::Tensor& x, const at::Tensor& w, const Geometry& geo) {
  std::vector<int64_t> shape{x.size(0), w.size(0)};
  for (int64_t d = 0; d < 2; ++d) {
    shape.push_back((x.size(2 + d) + 2 * geo.pad_begin[d] - geo.dilation[d] * (w.size(2 + d) - 1) - 1) / geo.stride[d] + 1);
  }
  return shape;
}

OpFn fused_kernel(const Chain& chain, const at::Tensor& w) {
  const Geometry geo = chain.geo;
  const int64_t group = chain.conv->args.i("group");
  // Reordered for a nominal input size; another size reuses it when oneDNN picks the same format.
  const at::Tensor packed = call(*reorder_op(), {w, geo.pad_begin, geo.stride, geo.dilation, group,
                                                 std::vector<int64_t>{1, w.size(1) * group, 64, 64}});
  const bool has_bias = chain.conv->inputs.size() > 2;
  const BoundOp conv = *chain.conv;
  const std::optional<BoundOp> add = chain.add ? std::optional<BoundOp>(*chain.add) : std::nullopt;
  const std::optional<BoundOp> relu = chain.relu ? std::optional<BoundOp>(*chain.relu) : std::nullopt;
  const size_t other_slot = chain.other_slot;
  const std::string unary = relu ? "relu" : "none";
  // Inputs: X, filter, [bias], [the Add's other operand].
  return [=](const Tensors& in, const BoundArgs&) -> Tensors {
    const at::Tensor& x = in[0];
    const at::Tensor bias = has_bias ? in[2] : at::Tensor();
    const at::Tensor other = add ? in.back() : at::Tensor();
    const bool dense = dense_input(x, w.size(1) * group) && (!bias.defined() || dense_float32(bias, 1)) &&
                       conv2d_uses_onednn(x, w, geo, group);
    const c10::IValue b = bias.defined() ? c10::IValue(bias) : c10::IValue();
    if (dense && !add) {
      return {call(*pointwise_op(""), {x, packed, b, geo.pad_begin, geo.stride, geo.dilation, group, unary,
                                       c10::List<std::optional<at::Scalar>>(), c10::IValue()})};
    }
    if (dense && dense_float32(other, 4) && other.sizes().vec() == output_shape(x, w, geo)) {
      return {call(*pointwise_op("binary"),
                   {x, other, packed, b, geo.pad_begin, geo.stride, geo.dilation, group, std::string("add"),
                    c10::IValue(), relu ? c10::IValue(std::string("relu")) : c10::IValue(),
                    c10::List<std::optional<at::Scalar>>(), c10::IValue()})};
    }
    Tensors conv_in{x, w};
    if (has_bias) conv_in.push_back(bias);
    Tensors y = conv.fn(conv_in, conv.args);
    if (add) {
      Tensors operands(2);
      operands[1 - other_slot] = y[0];
      operands[other_slot] = other;
      y = add->fn(operands, add->args);
    }
    if (relu) y = relu->fn({y[0]}, relu->args);
    return y;
  };
}

// No op between the chain's first and last writes a blob the fused op reads.
bool runs_through(const Chain& chain, const std::vector<BoundOp>& ops, size_t first) {
  std::set<std::string> reads(chain.conv->inputs.begin(), chain.conv->inputs.end());
  if (chain.add) reads.insert(chain.add->inputs[chain.other_slot]);
  for (size_t p = first + 1; p < chain.last; ++p) {
    if (&ops[p] == chain.add || &ops[p] == chain.relu) continue;
    for (const std::string& name : ops[p].outputs) {
      if (reads.count(name)) return false;
    }
  }
  return true;
}

}  // namespace

bool fusion_available() {
  return at::hasMKLDNN() && pointwise_op("") && pointwise_op("binary") && reorder_op();
}

std::vector<BoundOp> fold_parameter_copies(const std::vector<BoundOp>& ops, BlobMap& params,
                                           const std::set<std::string>& protected_names) {
  std::map<std::string, int> writes;
  for (const BoundOp& op : ops) {
    for (const std::string& name : op.outputs) ++writes[name];
  }
  std::vector<BoundOp> kept;
  for (const BoundOp& op : ops) {
    if (op.type == "Copy" && op.inputs.size() == 1 && op.outputs.size() == 1 && !writes[op.inputs[0]] &&
        writes[op.outputs[0]] == 1 && !protected_names.count(op.outputs[0])) {
      const auto source = params.find(op.inputs[0]);
      if (source != params.end() && source->second.defined()) {
        params[op.outputs[0]] = source->second;
        writes[op.outputs[0]] = 0;
        continue;
      }
    }
    kept.push_back(op);
  }
  return kept;
}

std::vector<BoundOp> fuse_convolutions(const std::vector<BoundOp>& ops, const BlobMap& params,
                                       const std::set<std::string>& protected_names) {
  if (!fusion_available()) return ops;
  std::map<size_t, BoundOp> fused_at;
  std::set<size_t> dropped;
  for (const Chain& chain : find_chains(ops, params, protected_names)) {
    const size_t first = static_cast<size_t>(chain.conv - ops.data());
    std::vector<size_t> members{first};
    if (chain.add) members.push_back(static_cast<size_t>(chain.add - ops.data()));
    if (chain.relu) members.push_back(static_cast<size_t>(chain.relu - ops.data()));
    if (!runs_through(chain, ops, first) ||
        std::any_of(members.begin(), members.end(), [&](size_t p) { return dropped.count(p) > 0; })) {
      continue;
    }
    BoundOp fused = *chain.conv;
    fused.type = "Conv";
    if (chain.add) fused.type += "+Add";
    if (chain.relu) fused.type += "+Relu";
    fused.fn = fused_kernel(chain, params.at(chain.conv->inputs[1]));
    if (chain.add) fused.inputs.push_back(chain.add->inputs[chain.other_slot]);
    fused.outputs = ops[chain.last].outputs;
    fused.contiguous_inputs.clear();
    fused.inplace_fn = nullptr;
    fused_at[chain.last] = std::move(fused);
    dropped.insert(members.begin(), members.end());
  }
  std::vector<BoundOp> result;
  for (size_t pos = 0; pos < ops.size(); ++pos) {
    const auto it = fused_at.find(pos);
    if (it != fused_at.end()) {
      result.push_back(it->second);
    } else if (!dropped.count(pos)) {
      result.push_back(ops[pos]);
    }
  }
  return result;
}

}  // namespace c2rt
