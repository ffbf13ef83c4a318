#include "registry.h"

#include <map>
#include <mutex>
#include <stdexcept>

#include "errors.h"
#include "ops/ops.h"

namespace c2rt {
namespace {

std::map<std::string, OpSchema>& table() {
  static std::map<std::string, OpSchema> ops;
  return ops;
}

void register_all_ops() {
  register_alias_ops();
  register_batch_permutation_ops();
  register_bbox_transform_ops();
  register_box_with_nms_limit_ops();
  register_conv_ops();
  register_copy_ops();
  register_elementwise_ops();
  register_fill_ops();
  register_fpn_proposals_ops();
  register_generate_proposals_ops();
  register_heatmap_keypoint_ops();
  register_linear_ops();
  register_normalization_ops();
  register_pad_ops();
  register_pool_ops();
  register_reduce_ops();
  register_resize_ops();
  register_roi_align_ops();
  register_shape_ops();
}

const std::map<std::string, OpSchema>& ops() {
  static std::once_flag once;
  std::call_once(once, register_all_ops);
  return table();
}

}  // namespace

void register_op(OpSchema schema) {
  const std::string type = schema.type;
  if (!table().emplace(type, std::move(schema)).second) {
    throw std::logic_error("Caffe2 op '" + type + "' registered twice");
  }
}

const OpSchema& get_op(const std::string& type) {
  auto it = ops().find(type);
  if (it == ops().end()) {
    throw UnknownOperatorError("Caffe2 op type " + quoted(type) + " is not implemented by this runtime; known types: " +
                               names_str(registered_ops()));
  }
  return it->second;
}

std::vector<std::string> registered_ops() {
  std::vector<std::string> names;
  for (const auto& [name, schema] : ops()) names.push_back(name);
  return names;
}

}  // namespace c2rt
