// One registration function per op family (src/ops/<family>.cpp, named like caffe2/ops/<family>.py).
#pragma once

namespace c2rt {

void register_alias_ops();
void register_batch_permutation_ops();
void register_bbox_transform_ops();
void register_box_with_nms_limit_ops();
void register_conv_ops();
void register_copy_ops();
void register_elementwise_ops();
void register_fill_ops();
void register_fpn_proposals_ops();
void register_generate_proposals_ops();
void register_heatmap_keypoint_ops();
void register_linear_ops();
void register_normalization_ops();
void register_pad_ops();
void register_pool_ops();
void register_reduce_ops();
void register_resize_ops();
void register_roi_align_ops();
void register_shape_ops();

}  // namespace c2rt
