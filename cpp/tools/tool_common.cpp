#include "tool_common.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "errors.h"

namespace c2rt::tools {

std::string describe_error(const std::exception& error) {
  const std::string name = error_class_name(error);
  if (!name.empty()) return name + ": " + error.what();
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error)) {
    return std::string("c10::Error: ") + c10_error->what_without_backtrace();
  }
  return std::string("std::exception: ") + error.what();
}

at::Device parse_device(const std::string& name) {
  const at::Device device(name);
  if (device.is_cuda() && !at::hasCUDA()) {
    throw Caffe2Error("--device=" + name + ": CUDA is not available on this machine (no GPU or driver), expected cpu");
  }
  if (!device.is_cpu() && !device.is_cuda()) throw Caffe2Error("--device=" + name + ", expected cpu or cuda");
  return device;
}

void set_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

std::string file_stem(const std::string& blob_name) {
  std::string out = blob_name;
  for (char& c : out) {
    if (c == '/' || c == '\\' || c == ':' || c == ' ') c = '_';
  }
  return out;
}

}  // namespace c2rt::tools
