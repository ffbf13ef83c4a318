// Helpers shared by the command-line tools: error reporting and device/thread setup.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "net_spec.h"

namespace c2rt::tools {

// "UnknownOperatorError: <message>": the runtime error class (or c10::Error / std::exception) and text.
std::string describe_error(const std::exception& error);

// "cpu" or "cuda" (optionally "cuda:N"); Caffe2Error when CUDA is requested but not available.
at::Device parse_device(const std::string& name);

// Sets ATen's intra-op threads when n > 0.
void set_threads(int n);

// A file-name-safe version of a blob name ('/' and other separators become '_').
std::string file_stem(const std::string& blob_name);

// The largest size_divisibility a predict net may ask for (detectron2's backbones use up to 128;
// larger values only come from a malformed file and would pad images without bound).
inline constexpr int64_t kMaxSizeDivisibility = int64_t{1} << 16;

// The predict net's metadata arguments that Caffe2Model and caffe2_mask_rcnn read, with upstream's
// defaults when absent (upstream files have no pad_value).
struct ModelMeta {
  std::string meta_architecture = "GeneralizedRCNN";
  int64_t size_divisibility = 0;
  std::string device = "cpu";
  std::vector<float> pad_value;  // one per BGR channel; empty: pad with zeros
};

// Checked at load time: meta_architecture a string, size_divisibility an int in
// [0, kMaxSizeDivisibility], device "cpu", "cuda" or "cuda:N", pad_value 3 finite numbers.
// OperatorArgumentError naming `path`, the argument, what it holds and what was expected.
ModelMeta read_model_meta(const NetSpec& predict_net, const std::string& path);

}  // namespace c2rt::tools
