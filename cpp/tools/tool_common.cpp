#include "tool_common.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <regex>

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

namespace {

[[noreturn]] void bad_meta(const std::string& path, const std::string& name, const Value& value,
                           const std::string& expected) {
  throw OperatorArgumentError(path + ": predict net argument " + name + "=" + value.repr() + ", expected " + expected);
}

}  // namespace

ModelMeta read_model_meta(const NetSpec& predict_net, const std::string& path) {
  ModelMeta meta;
  if (const std::optional<Value> v = predict_net.arg("meta_architecture")) {
    if (v->kind != Value::Kind::String || v->s.empty()) bad_meta(path, "meta_architecture", *v, "a non-empty string");
    meta.meta_architecture = v->s;
  }
  if (const std::optional<Value> v = predict_net.arg("size_divisibility")) {
    if (v->kind != Value::Kind::Int || v->i < 0 || v->i > kMaxSizeDivisibility) {
      bad_meta(path, "size_divisibility", *v, "an int in [0, " + std::to_string(kMaxSizeDivisibility) + "]");
    }
    meta.size_divisibility = v->i;
  }
  if (const std::optional<Value> v = predict_net.arg("device")) {
    static const std::regex device_pattern("cpu|cuda(:[0-9]{1,3})?");
    if (v->kind != Value::Kind::String || !std::regex_match(v->s, device_pattern)) {
      bad_meta(path, "device", *v, "'cpu', 'cuda' or 'cuda:N'");
    }
    meta.device = v->s;
  }
  if (const std::optional<Value> v = predict_net.arg("pad_value")) {
    std::vector<float> values;
    if (v->kind == Value::Kind::Floats) values = *v->floats;
    if (v->kind == Value::Kind::Ints) values.assign(v->ints->begin(), v->ints->end());
    const bool finite = std::all_of(values.begin(), values.end(), [](float x) { return std::isfinite(x); });
    if (values.size() != 3 || !finite) bad_meta(path, "pad_value", *v, "3 finite numbers (one per BGR channel)");
    meta.pad_value = values;
  }
  return meta;
}

}  // namespace c2rt::tools
