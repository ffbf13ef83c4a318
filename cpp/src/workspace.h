// Workspaces: named blobs (ATen tensors) and the nets created in them, with Caffe2's method names
// (mirrors detectron2_export/caffe2/workspace.py), and ProtobufModel: an init/predict net pair run
// the way detectron2's Caffe2Model and caffe2_mask_rcnn do.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "executor.h"
#include "net_spec.h"

namespace c2rt {

class Workspace {
 public:
  // Blobs live on `device`: fed tensors are moved there, and nets compute there.
  explicit Workspace(at::Device device = at::kCPU) : device_(device) {}

  void feed_blob(const std::string& name, const at::Tensor& value);
  // The blob as stored (undefined for an empty blob); OperatorInputError if it does not exist.
  at::Tensor fetch_blob(const std::string& name) const;
  bool has_blob(const std::string& name) const { return blobs_.count(name) > 0; }
  // An empty blob, unless it already exists.
  void create_blob(const std::string& name);
  std::vector<std::string> blobs() const;
  // The blobs themselves, for load-time passes that re-store them (layout.h).
  BlobMap& blob_map() { return blobs_; }
  const BlobMap& blob_map() const { return blobs_; }

  void run_net_once(const NetSpec& net);
  // Binds the net's ops once (later run_net calls only execute them); every op output becomes an
  // (empty) blob, as in Caffe2. With `inplace`, element-wise ops may overwrite dead intermediate blobs
  // (inplace.h): only the external outputs are then guaranteed to hold their own values.
  void create_net(const NetSpec& net, bool overwrite = false, bool inplace = false);
  void run_net(const std::string& name, Profile* profile = nullptr);
  // A created net; Caffe2Error if there is none of that name.
  const Net& net(const std::string& name) const;
  Net& net(const std::string& name);

  const at::Device& device() const { return device_; }

 private:
  std::set<std::string> blob_names() const;

  at::Device device_;
  BlobMap blobs_;
  std::map<std::string, std::unique_ptr<Net>> nets_;
};

// Runs `init_net` once into a private workspace, then `predict_net` per call. The graph inputs are the
// predict net's external inputs that the init net did not produce, in order (normally data, im_info);
// run() returns the external outputs in order. Convolution filters on the CPU are stored channels-last
// (layout.h): outputs equal a plain run's up to float rounding, and may come back channels-last.
// Since only the external outputs are fetched, the net runs element-wise ops in place (inplace.h) and,
// with `fuse` on the CPU, folds the Copy ops of parameters at load time and runs Conv(+Add)(+Relu)
// chains as one oneDNN convolution (fusion.h).
//
// run() is const and thread-safe: the workspace holds only the parameters, read-only after loading;
// each call runs in its own blob map (a copy of the parameter map: the tensors are shared, not
// copied), which holds its inputs and activations, each erased after its last reader.
class ProtobufModel {
 public:
  ProtobufModel(const NetSpec& predict_net, const NetSpec& init_net, at::Device device = at::kCPU, bool fuse = true);

  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return predict_net_.external_output; }
  const NetSpec& predict_net() const { return predict_net_; }
  // The filter blobs stored channels-last at load time (sorted).
  const std::vector<std::string>& channels_last_filter_names() const { return channels_last_filters_; }
  // The predict net's ops that write into their input 0 (inplace.h).
  const std::vector<int64_t>& inplace_op_indices() const { return workspace_.net(predict_net_.name).inplace_op_indices(); }
  // The type of each op as it runs (fused chains as "Conv+Add+Relu", ...), in order.
  std::vector<std::string> op_types() const;

  // With `profile` (one per calling thread), accumulates each op type's time and FLOPs (Net::run).
  std::vector<at::Tensor> run(const std::vector<at::Tensor>& inputs, Profile* profile = nullptr) const;

 private:
  NetSpec predict_net_;
  Workspace workspace_;
  std::vector<std::string> input_names_;
  std::vector<std::string> channels_last_filters_;
};

}  // namespace c2rt
