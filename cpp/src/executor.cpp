#include "executor.h"

#include <c10/util/Exception.h>

#include <chrono>

#include "errors.h"

namespace c2rt {
namespace {

void check_count(const OpSchema& schema, const char* what, size_t n, std::pair<int, int> bounds) {
  const auto [lo, hi] = bounds;
  if (static_cast<int>(n) >= lo && (hi == kUnbounded || static_cast<int>(n) <= hi)) return;
  std::string expected = hi == kUnbounded ? "at least " + std::to_string(lo)
                         : lo == hi      ? std::to_string(lo)
                                         : std::to_string(lo) + " to " + std::to_string(hi);
  throw OperatorInputError(schema.type + ": " + std::to_string(n) + " " + what + ", expected " + expected);
}

BoundOp bind_operator(const OperatorSpec& op, int index) {
  BoundOp bound;
  bound.index = index;
  bound.schema = &get_op(op.type);
  bound.type = bound.schema->type;
  bound.fn = bound.schema->fn;
  check_count(*bound.schema, "inputs", op.inputs.size(), bound.schema->n_inputs);
  check_count(*bound.schema, "outputs", op.outputs.size(), bound.schema->n_outputs);
  bound.args = bind_args(op.type, bound.schema->args, bound.schema->ignored_args, op.args);
  bound.inputs = op.inputs;
  bound.outputs = op.outputs;
  for (size_t i : bound.schema->contiguous_inputs) {
    if (i < op.inputs.size()) bound.contiguous_inputs.push_back(i);
  }
  return bound;
}

}  // namespace

std::string describe_op(const std::string& net_name, int index, const std::string& type,
                        const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
  return "net '" + net_name + "' op #" + std::to_string(index) + " '" + type + "' (inputs " + names_str(inputs) +
         ", outputs " + names_str(outputs) + ")";
}

void rethrow_with_context(const std::exception& error, const std::string& context) {
  const std::string message = context + ": " + error.what();
  const std::string name = error_class_name(error);
  if (name == "ProtobufError") throw ProtobufError(message);
  if (name == "UnknownOperatorError") throw UnknownOperatorError(message);
  if (name == "OperatorArgumentError") throw OperatorArgumentError(message);
  if (name == "OperatorInputError") throw OperatorInputError(message);
  if (name == "Caffe2Error") throw Caffe2Error(message);
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    throw OperatorInputError(context + ": c10::Error: " + c10_error->what_without_backtrace());
  }
  throw OperatorInputError(context + ": std::exception: " + error.what());
}

Net::Net(const NetSpec& spec, const std::set<std::string>& existing_blobs, bool inplace)
    : name_(spec.name), external_outputs_(spec.external_output) {
  ops_.reserve(spec.ops.size());
  for (size_t index = 0; index < spec.ops.size(); ++index) {
    const OperatorSpec& op = spec.ops[index];
    try {
      ops_.push_back(bind_operator(op, static_cast<int>(index)));
    } catch (const std::exception& e) {
      rethrow_with_context(e, describe_op(name_, static_cast<int>(index), op.type, op.inputs, op.outputs));
    }
  }
  if (inplace) {
    const std::set<std::string> outputs(spec.external_output.begin(), spec.external_output.end());
    for (int index : plan_inplace(spec.ops, outputs)) {
      ops_[index].inplace_fn = inplace_kernel(spec.ops[index].type);
      inplace_plan_.push_back(index);
    }
  }
  std::set<std::string> known = existing_blobs;
  known.insert(spec.external_input.begin(), spec.external_input.end());
  for (const BoundOp& op : ops_) {
    for (const std::string& input : op.inputs) {
      if (!known.count(input)) {
        throw OperatorInputError(describe_op(name_, op.index, op.type, op.inputs, op.outputs) +
                                 ": input blob '" + input +
                                 "' does not exist in the workspace, is not an external input and no earlier "
                                 "op produces it");
      }
    }
    known.insert(op.outputs.begin(), op.outputs.end());
  }
  plan_release();
}

void Net::replace_ops(std::vector<BoundOp> ops) {
  ops_ = std::move(ops);
  plan_release();
}

void Net::plan_release() {
  std::set<std::string> produced;
  std::map<std::string, size_t> last_use;
  for (size_t pos = 0; pos < ops_.size(); ++pos) {
    for (const std::string& name : ops_[pos].inputs) last_use[name] = pos;
    for (const std::string& name : ops_[pos].outputs) {
      last_use[name] = pos;
      produced.insert(name);
    }
  }
  const std::set<std::string> keep(external_outputs_.begin(), external_outputs_.end());
  release_after_.assign(ops_.size(), {});
  for (const auto& [name, pos] : last_use) {
    if (produced.count(name) && !keep.count(name)) release_after_[pos].push_back(name);
  }
}

void Net::run(BlobMap& blobs, const at::Device& device, Profile* profile, bool release_dead) const {
  for (size_t pos = 0; pos < ops_.size(); ++pos) {
    const BoundOp& op = ops_[pos];
    const auto start = std::chrono::steady_clock::now();
    std::optional<double> flops;
    try {
      Tensors inputs;
      inputs.reserve(op.inputs.size());
      for (const std::string& name : op.inputs) {
        auto it = blobs.find(name);
        if (it == blobs.end()) {
          throw OperatorInputError("input blob '" + name + "' does not exist in the workspace");
        }
        if (!it->second.defined()) {
          throw OperatorInputError("input blob '" + name + "' is empty (never fed or computed)");
        }
        inputs.push_back(it->second);
      }
      for (size_t i : op.contiguous_inputs) {
        if (!inputs[i].is_contiguous()) inputs[i] = blobs[op.inputs[i]] = inputs[i].contiguous();
      }
      std::optional<Tensors> inplace_results = op.inplace_fn ? op.inplace_fn(inputs, op.args) : std::nullopt;
      Tensors results = inplace_results ? std::move(*inplace_results) : op.fn(inputs, op.args);
      if (results.size() < op.outputs.size()) {
        throw OperatorInputError("computed " + std::to_string(results.size()) + " outputs, expected " +
                                 std::to_string(op.outputs.size()));
      }
      if (profile) flops = op_flops(op.type, inputs, results);
      for (size_t k = 0; k < op.outputs.size(); ++k) {
        at::Tensor value = std::move(results[k]);
        if (inputs.empty() && value.device() != device) value = value.to(device);
        blobs[op.outputs[k]] = std::move(value);
      }
    } catch (const std::exception& e) {
      rethrow_with_context(e, describe_op(name_, op.index, op.type, op.inputs, op.outputs));
    }
    if (profile) {
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      profile->add(op.type, elapsed.count(), flops);
    }
    if (release_dead) {
      for (const std::string& name : release_after_[pos]) blobs.erase(name);
    }
  }
  if (profile) ++profile->runs;
}

}  // namespace c2rt
