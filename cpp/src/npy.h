// NumPy .npy files (format 1.0-3.0, little-endian) <-> CPU tensors, for feeding and dumping blobs.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace c2rt {

// Supported dtypes: float16/32/64, int8/16/32/64, uint8, uint16, bool. Throws Caffe2Error naming
// the file on a bad header or an unsupported dtype.
at::Tensor read_npy(const std::string& path);

// Writes `tensor` (copied to the CPU, contiguous) as a format 1.0 file.
void write_npy(const std::string& path, const at::Tensor& tensor);

}  // namespace c2rt
