// Load-time fusion of Conv, Conv+Relu, Conv+Add and Conv+Add+Relu into one oneDNN convolution
// (mirrors detectron2_export/caffe2/fusion.py).
//
// torch's mkldnn::_convolution_pointwise runs a convolution with a unary post-op ("relu") or a binary
// one ("add" with a second tensor, then an optional "relu") in one pass over the output, with the filter
// reordered once at load time (mkldnn::_reorder_convolution_weight) instead of on every call; no
// intermediate activation is allocated. A chain is fused when each intermediate blob version (the Conv
// output, the Add output) has exactly one reader, the next op of the chain, and is not a net output; the
// filter is a 4-D float32 CPU parameter the net never writes, the pads are symmetric and the Add has no
// broadcast arguments. The fused op takes the place of the chain's last op, reads X, the filter, the
// bias and the Add's other operand, and writes the chain's last output. At run time anything else
// (other dtypes or shapes, a non-dense X, inputs for which at::conv2d would not use oneDNN either) runs
// the chain's original ops one after another, so that results stay the unfused net's.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "executor.h"

namespace c2rt {

// Whether this libtorch has oneDNN's pointwise convolution ops.
bool fusion_available();

// `ops` without the Copy ops of parameters, their outputs stored in `params` instead (sharing the
// parameter, which is never written in place). The exporter materialises shared initializers (the equal
// biases of a randomly initialised model) with Copy ops; their outputs are then net-written, so no
// convolution reading them would fuse, and every run copies them again. A Copy is folded when its
// input is a parameter the net never writes and its output is written by no other op and is not in
// `protected_names` (mirrors fusion.py: fold_parameter_copies).
std::vector<BoundOp> fold_parameter_copies(const std::vector<BoundOp>& ops, BlobMap& params,
                                           const std::set<std::string>& protected_names);

// `ops` with every fusable chain replaced by one op. `params`: the init net's blobs (filters are read
// once from it); `protected_names`: the net's external outputs, which keep their own values.
std::vector<BoundOp> fuse_convolutions(const std::vector<BoundOp>& ops, const BlobMap& params,
                                       const std::set<std::string>& protected_names);

}  // namespace c2rt
