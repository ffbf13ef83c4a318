// Helpers shared by the command-line tools: error reporting and device/thread setup.
#pragma once

#include <ATen/ATen.h>

#include <exception>
#include <string>

namespace c2rt::tools {

// "UnknownOperatorError: <message>": the runtime error class (or c10::Error / std::exception) and text.
std::string describe_error(const std::exception& error);

// "cpu" or "cuda" (optionally "cuda:N"); Caffe2Error when CUDA is requested but not available.
at::Device parse_device(const std::string& name);

// Sets ATen's intra-op threads when n > 0.
void set_threads(int n);

// A file-name-safe version of a blob name ('/' and other separators become '_').
std::string file_stem(const std::string& blob_name);

}  // namespace c2rt::tools
