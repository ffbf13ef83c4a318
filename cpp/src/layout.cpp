#include "layout.h"

#include <map>
#include <set>

namespace c2rt {
namespace {

// Op type -> index of its filter input.
const std::map<std::string, size_t> kFilterInput{{"Conv", 1}, {"ConvTranspose", 1}};

bool is_cpu_float_filter(const at::Tensor& t) {
  return t.defined() && t.dim() == 4 && t.is_floating_point() && t.device().is_cpu();
}

}  // namespace

std::vector<std::string> channels_last_filters(const NetSpec& net, BlobMap& blobs) {
  std::set<std::string> filter_reads, other_reads, written;
  for (const OperatorSpec& op : net.ops) {
    const auto slot = kFilterInput.find(op.type);
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const bool is_filter = slot != kFilterInput.end() && i == slot->second;
      (is_filter ? filter_reads : other_reads).insert(op.inputs[i]);
    }
    written.insert(op.outputs.begin(), op.outputs.end());
  }
  std::vector<std::string> converted;
  for (const std::string& name : filter_reads) {  // std::set: sorted
    if (other_reads.count(name) || written.count(name)) continue;
    auto it = blobs.find(name);
    if (it == blobs.end() || !is_cpu_float_filter(it->second)) continue;
    it->second = it->second.contiguous(at::MemoryFormat::ChannelsLast);
    converted.push_back(name);
  }
  return converted;
}

std::string layout_name(const at::Tensor& tensor) {
  if (!tensor.defined()) return "empty";
  if (tensor.is_contiguous()) return "row-major";
  if (tensor.dim() == 4 && tensor.is_contiguous(at::MemoryFormat::ChannelsLast)) return "channels-last";
  return "strided";
}

}  // namespace c2rt
