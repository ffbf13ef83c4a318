"""Turning dense RPN predictions into a short, per-image list of proposals (detectron2 v0.6).

Kept free of Python-side shape decisions while tracing, so that a traced RPN accepts any input
resolution: level sizes stay tensors and the "drop empty boxes" step is always recorded.
"""

from typing import List, Tuple

import torch

from detectron2_export.layers import batched_nms, cat, move_device_like
from detectron2_export.structures import Boxes, Instances
from detectron2_export.utils.training_only import training_only_function

__all__ = ["find_top_rpn_proposals", "add_ground_truth_to_proposals", "add_ground_truth_to_proposals_single_image"]

# training-only (ground truth joins the proposals to sample RoI heads' examples): import, then raise
add_ground_truth_to_proposals = training_only_function(__name__, "add_ground_truth_to_proposals")
add_ground_truth_to_proposals_single_image = training_only_function(
    __name__, "add_ground_truth_to_proposals_single_image"
)


def _is_tracing() -> bool:
    """torch.jit.is_tracing(), which cannot be called while scripting on old PyTorch (#47379)."""
    if torch.jit.is_scripting():
        return False
    return torch.jit.is_tracing()


def find_top_rpn_proposals(
    proposals: List[torch.Tensor],
    pred_objectness_logits: List[torch.Tensor],
    image_sizes: List[Tuple[int, int]],
    nms_thresh: float,
    pre_nms_topk: int,
    post_nms_topk: int,
    min_box_size: float,
    training: bool,
):
    """Pick the best RPN proposals of every image.

    Per feature level, keep the ``pre_nms_topk`` highest-scoring proposals; then, per image, drop
    non-finite entries, clip to the image, drop boxes with a side <= ``min_box_size``, run NMS
    independently per level and keep the ``post_nms_topk`` best over all levels.

    Args:
        proposals: L tensors, level i of shape (N, Hi*Wi*A, 4): decoded boxes (XYXY, pixels).
        pred_objectness_logits: L tensors, level i of shape (N, Hi*Wi*A).
        image_sizes: (h, w) of each of the N images, used for clipping.
        nms_thresh: IoU threshold of the per-level NMS.
        pre_nms_topk: proposals kept per level (FPN: per feature map) before NMS.
        post_nms_topk: proposals kept per image after NMS, over all levels.
        min_box_size: boxes whose width or height is not above this (pixels) are removed.
        training: only changes the reaction to Inf/NaN (raise instead of filter).

    Returns:
        list[Instances]: N Instances with fields ``proposal_boxes`` (Boxes) and
        ``objectness_logits`` (Tensor), sorted by decreasing objectness.
    """
    num_images = len(image_sizes)
    device = proposals[0].device
    if _is_tracing():
        # Create index tensors on the CPU and move them like the inputs: a traced graph then
        # holds no device constant and runs wherever the model is moved.
        device = torch.device("cpu")

    # 1. Top-k anchors of every level and every image.
    topk_scores = []  # L tensors of shape (N, topk_i)
    topk_proposals = []
    level_ids = []  # L tensors of shape (topk_i,)
    batch_idx = move_device_like(torch.arange(num_images, device=device), proposals[0])
    for level_id, (proposals_i, logits_i) in enumerate(zip(proposals, pred_objectness_logits)):
        Hi_Wi_A = logits_i.shape[1]
        if isinstance(Hi_Wi_A, torch.Tensor):  # a size is a tensor while tracing
            num_proposals_i = torch.clamp(Hi_Wi_A, max=pre_nms_topk)
        else:
            num_proposals_i = min(Hi_Wi_A, pre_nms_topk)

        # detectron2 v0.6 sorts instead of calling topk (faster then, pytorch#22812); same
        # choice here so that ties are broken in the same order.
        logits_i, idx = logits_i.sort(descending=True, dim=1)
        topk_scores_i = logits_i.narrow(1, 0, num_proposals_i)
        topk_idx = idx.narrow(1, 0, num_proposals_i)

        topk_proposals_i = proposals_i[batch_idx[:, None], topk_idx]  # (N, topk_i, 4)

        topk_proposals.append(topk_proposals_i)
        topk_scores.append(topk_scores_i)
        level_ids.append(
            move_device_like(
                torch.full((num_proposals_i,), level_id, dtype=torch.int64, device=device),
                proposals[0],
            )
        )

    # 2. All levels together.
    topk_scores = cat(topk_scores, dim=1)
    topk_proposals = cat(topk_proposals, dim=1)
    level_ids = cat(level_ids, dim=0)

    # 3. Per image: NMS within each level, then the best post_nms_topk over all levels.
    results: List[Instances] = []
    for n, image_size in enumerate(image_sizes):
        boxes = Boxes(topk_proposals[n])
        scores_per_img = topk_scores[n]
        lvl = level_ids

        valid_mask = torch.isfinite(boxes.tensor).all(dim=1) & torch.isfinite(scores_per_img)
        if not valid_mask.all():
            if training:
                raise FloatingPointError(
                    "Predicted boxes or scores contain Inf/NaN. Training has diverged."
                )
            boxes = boxes[valid_mask]
            scores_per_img = scores_per_img[valid_mask]
            lvl = lvl[valid_mask]
        boxes.clip(image_size)

        # Remove empty boxes; while tracing always index, so the filter is part of the graph.
        keep = boxes.nonempty(threshold=min_box_size)
        if _is_tracing() or keep.sum().item() != len(boxes):
            boxes, scores_per_img, lvl = boxes[keep], scores_per_img[keep], lvl[keep]

        keep = batched_nms(boxes.tensor, scores_per_img, lvl, nms_thresh)
        # Unlike Detectron1 in training, the top-k is per image, which keeps results
        # independent of the batch size.
        keep = keep[:post_nms_topk]  # batched_nms returns indices sorted by score

        res = Instances(image_size)
        res.proposal_boxes = boxes[keep]
        res.objectness_logits = scores_per_img[keep]
        results.append(res)
    return results
