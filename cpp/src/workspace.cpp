#include "workspace.h"

#include <algorithm>
#include <utility>

#include "errors.h"
#include "fusion.h"
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

void Workspace::run_net(const std::string& name, Profile* profile) { net(name).run(blobs_, device_, profile); }

const Net& Workspace::net(const std::string& name) const {
  auto it = nets_.find(name);
  if (it == nets_.end()) throw Caffe2Error("Workspace: net '" + name + "' was not created");
  return *it->second;
}

Net& Workspace::net(const std::string& name) { return const_cast<Net&>(std::as_const(*this).net(name)); }

ProtobufModel::ProtobufModel(const NetSpec& predict_net, const NetSpec& init_net, at::Device device, bool fuse)
    : predict_net_(predict_net), workspace_(device) {
  workspace_.run_net_once(init_net);
  for (const std::string& name : predict_net_.external_input) {
    if (!workspace_.has_blob(name)) input_names_.push_back(name);
  }
  for (const std::string& name : input_names_) workspace_.create_blob(name);
  channels_last_filters_ = channels_last_filters(predict_net_, workspace_.blob_map());
  workspace_.create_net(predict_net_, /*overwrite=*/false, /*inplace=*/true);
  if (fuse && device.is_cpu()) {
    Net& net = workspace_.net(predict_net_.name);
    const std::set<std::string> outputs(predict_net_.external_output.begin(), predict_net_.external_output.end());
    const std::vector<BoundOp> folded = fold_parameter_copies(net.ops(), workspace_.blob_map(), outputs);
    net.replace_ops(fuse_convolutions(folded, workspace_.blob_map(), outputs));
  }
}

std::vector<std::string> ProtobufModel::op_types() const {
  std::vector<std::string> types;
  for (const BoundOp& op : workspace_.net(predict_net_.name).ops()) types.push_back(op.type);
  return types;
}

std::vector<at::Tensor> ProtobufModel::run(const std::vector<at::Tensor>& inputs, Profile* profile) const {
  if (inputs.size() != input_names_.size()) {
    throw OperatorInputError("ProtobufModel '" + predict_net_.name + "': got " + std::to_string(inputs.size()) +
                             " inputs, expected " + std::to_string(input_names_.size()) + " for the graph inputs " +
                             names_str(input_names_) + " (external inputs the init net does not produce)");
  }
  BlobMap blobs = workspace_.blob_map();  // this call's activations; parameters shared, never written
  const at::Device& device = workspace_.device();
  for (size_t k = 0; k < inputs.size(); ++k) {
    blobs[input_names_[k]] = inputs[k].defined() ? inputs[k].to(device) : inputs[k];
  }
  workspace_.net(predict_net_.name).run(blobs, device, profile, /*release_dead=*/true);
  std::vector<at::Tensor> outputs;
  for (const std::string& name : predict_net_.external_output) {
    const auto it = blobs.find(name);
    at::Tensor value = it == blobs.end() ? at::Tensor() : it->second;
    if (!value.defined()) {
      throw OperatorInputError("ProtobufModel '" + predict_net_.name + "': output blob '" + name +
                               "' was not computed by the net");
    }
    outputs.push_back(value);
  }
  return outputs;
}

}  // namespace c2rt
