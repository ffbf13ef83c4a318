// Time per operator type and achieved GFLOP/s of the convolutions against the machine's fp32 peak
// (mirrors detectron2_export/caffe2/profiler.py): caffe2_run_net --profile prints profile_table().
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <string>

#include "registry.h"

namespace c2rt {

struct OpTypeStats {
  int64_t calls = 0;
  double seconds = 0;
  double flops = 0;
  double flop_seconds = 0;  // seconds of the calls that have a FLOP count (GFLOP/s denominator)
};

// Accumulated per-op-type statistics over `runs` net runs (one Profile per thread).
struct Profile {
  int64_t runs = 0;
  std::map<std::string, OpTypeStats> ops;

  void add(const std::string& type, double seconds, std::optional<double> flops);
};

// FLOPs (2 x multiply-adds) of one call of Conv, ConvTranspose, FC, FCTransposed or a fused
// convolution ("Conv+Relu", ...), from its inputs and outputs; nullopt for other ops.
std::optional<double> op_flops(const std::string& type, const Tensors& inputs, const Tensors& outputs);

// Best of 3 timed 4096^2 float32 matmuls at ATen's current thread count, in GFLOP/s.
double fp32_peak_gflops();

// Per op type, slowest first: calls/run, ms/run, share of the total, GFLOP/run, GFLOP/s and the
// share of `peak_gflops`; then the total and the peak. Same columns as the Python table.
std::string profile_table(const Profile& profile, double peak_gflops);

}  // namespace c2rt
