#include "workspace.h"

#include <algorithm>

#include "errors.h"
#include "layout.h"

namespace c2rt {

void Workspace::feed_blob(const std::string& name, const at::Tensor& value) {
  blobs_[name] = value.defined() ? value.to(device_) : value;
}

at::Tensor Workspace::fetch_blob(const std::string& name) const {
  auto it = blobs_.find(name);
  if (it == blobs_.end()) {
    throw OperatorInputError("Workspace: blob '" + name + "' does not exist; blobs: " + names_str(blobs()));
  }
  return it->second;
}

void Workspace::create_blob(const std::string& name) { blobs_.try_emplace(name); }

std::vector<std::string> Workspace::blobs() const {
  std::vector<std::string> names;
  for (const auto& [name, value] : blobs_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

std::set<std::string> Workspace::blob_names() const {
  std::set<std::string> names;
  for (const auto& [name, value] : blobs_) names.insert(name);
  return names;
}

void Workspace::run_net_once(const NetSpec& net) { Net(net, blob_names()).run(blobs_, device_); }

void Workspace::create_net(const NetSpec& net, bool overwrite, bool inplace) {
  if (nets_.count(net.name) && !overwrite) {
    throw Caffe2Error("Workspace: net '" + net.name + "' already exists, pass overwrite=true to replace it");
  }
  auto created = std::make_unique<Net>(net, blob_names(), inplace);
  for (const BoundOp& op : created->ops()) {
    for (const std::string& output : op.outputs) create_blob(output);
  }
  nets_[net.name] = std::move(created);
}

void Workspace::run_net(const std::string& name, OpTimes* op_seconds) {
  net(name).run(blobs_, device_, op_seconds);
}

const Net& Workspace::net(const std::string& name) const {
  auto it = nets_.find(name);
  if (it == nets_.end()) throw Caffe2Error("Workspace: net '" + name + "' was not created");
  return *it->second;
}

ProtobufModel::ProtobufModel(const NetSpec& predict_net, const NetSpec& init_net, at::Device device)
    : predict_net_(predict_net), workspace_(device) {
  workspace_.run_net_once(init_net);
  for (const std::string& name : predict_net_.external_input) {
    if (!workspace_.has_blob(name)) input_names_.push_back(name);
  }
  for (const std::string& name : input_names_) workspace_.create_blob(name);
  channels_last_filters_ = channels_last_filters(predict_net_, workspace_.blob_map());
  workspace_.create_net(predict_net_, /*overwrite=*/false, /*inplace=*/true);
}

std::vector<at::Tensor> ProtobufModel::run(const std::vector<at::Tensor>& inputs, OpTimes* op_seconds) {
  if (inputs.size() != input_names_.size()) {
    throw OperatorInputError("ProtobufModel '" + predict_net_.name + "': got " + std::to_string(inputs.size()) +
                             " inputs, expected " + std::to_string(input_names_.size()) + " for the graph inputs " +
                             names_str(input_names_) + " (external inputs the init net does not produce)");
  }
  for (size_t k = 0; k < inputs.size(); ++k) workspace_.feed_blob(input_names_[k], inputs[k]);
  workspace_.run_net(predict_net_.name, op_seconds);
  std::vector<at::Tensor> outputs;
  for (const std::string& name : predict_net_.external_output) {
    at::Tensor value = workspace_.fetch_blob(name);
    if (!value.defined()) {
      throw OperatorInputError("ProtobufModel '" + predict_net_.name + "': output blob '" + name +
                               "' was not computed by the net");
    }
    outputs.push_back(value);
  }
  // A later failed run must never return these results.
  for (const std::string& name : predict_net_.external_output) workspace_.feed_blob(name, at::Tensor());
  return outputs;
}

}  // namespace c2rt
