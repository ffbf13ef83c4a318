"""``nms.batched_nms_topk``: NMS per group and image then the k best of every image, against
detectron2's ``batched_nms`` + ``keep[:k]`` image by image; in torch and exported."""

from typing import List, Tuple

import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.nms import batched_nms_topk
from detectron2_export.export.onnx.ops import ALL
from detectron2_export.layers import batched_nms

from .helpers import OnnxFunction, dynamic

NEG_INF = float("-inf")
NUM_GROUPS = 3


class BatchedNmsTopk(nn.Module):
    def __init__(self, iou_threshold: float, k: int) -> None:
        super().__init__()
        self.iou_threshold, self.k = iou_threshold, k

    def forward(self, boxes, scores, groups):
        return batched_nms_topk(boxes, scores, groups, NUM_GROUPS, self.iou_threshold, self.k)


def _case(n: int, b: int, seed: int, per_image_groups: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, b, 2, generator=g) * 30
    sizes = torch.rand(n, b, 2, generator=g) * 15 + 3
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)
    scores = torch.randperm(n * b, generator=g).to(torch.float32).reshape(n, b) / (n * b)
    scores[torch.rand(n, b, generator=g) < 0.25] = NEG_INF
    shape = (n, b) if per_image_groups else (b,)
    return boxes, scores, torch.randint(0, NUM_GROUPS, shape, generator=g)


def _reference(boxes, scores, groups, iou_threshold: float, k: int) -> List[torch.Tensor]:
    """Per image: indices of detectron2's batched_nms over the finite candidates, cut at k."""
    kept = []
    for i in range(scores.shape[0]):
        groups_i = groups[i] if groups.dim() == 2 else groups
        candidates = torch.nonzero(scores[i] > NEG_INF)[:, 0]
        keep = batched_nms(boxes[i, candidates], scores[i, candidates], groups_i[candidates], iou_threshold)
        kept.append(candidates[keep[:k]])
    return kept


def _assert_matches(top_scores, index, boxes, scores, groups, iou_threshold: float, k: int) -> None:
    top_scores, index = torch.as_tensor(top_scores), torch.as_tensor(index)
    assert top_scores.shape == index.shape == (scores.shape[0], min(k, scores.shape[1]))
    for i, expected in enumerate(_reference(boxes, scores, groups, iou_threshold, k)):
        m = len(expected)
        assert index[i, :m].tolist() == expected.tolist(), f"image {i}"
        assert torch.equal(top_scores[i, :m], scores[i, expected])
        assert (top_scores[i, m:] == NEG_INF).all(), f"image {i}: padding"


@pytest.mark.parametrize("per_image_groups", [False, True])
@pytest.mark.parametrize("k", [2, 5, 1000])
def test_torch_equals_batched_nms_then_topk(per_image_groups, k):
    boxes, scores, groups = _case(3, 16, seed=k, per_image_groups=per_image_groups)
    _assert_matches(*batched_nms_topk(boxes, scores, groups, NUM_GROUPS, 0.5, k), boxes, scores, groups, 0.5, k)


def test_hand_case_groups_do_not_suppress_each_other():
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0]] * 3 + [[0.0, 0.0, 9.0, 10.0]]])
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.95]])
    groups = torch.tensor([0, 1, 0, 0])  # box 3 suppresses 0 and 2 in group 0; box 1 is alone in group 1
    top_scores, index = batched_nms_topk(boxes, scores, groups, 2, 0.5, 3)
    assert index[0, :2].tolist() == [3, 1]
    assert torch.equal(top_scores[0], torch.tensor([0.95, 0.8, NEG_INF]))


def test_an_image_without_candidates_is_all_padding():
    boxes, scores, groups = _case(2, 6, seed=3, per_image_groups=False)
    scores[1] = NEG_INF
    top_scores, _ = batched_nms_topk(boxes, scores, groups, NUM_GROUPS, 0.5, 4)
    assert (top_scores[1] == NEG_INF).all() and (top_scores[0, 0] > NEG_INF)


@pytest.mark.parametrize("per_image_groups, k", [(False, 6), (True, 6), (False, ALL)])
def test_onnx_equals_the_reference_on_other_batch_and_box_counts(per_image_groups, k):
    names = ["boxes", "scores", "groups", "top_scores", "index"]
    group_axes = [0, 1] if per_image_groups else [0]
    fn = OnnxFunction(
        BatchedNmsTopk(0.5, k), _case(2, 10, seed=0, per_image_groups=per_image_groups), names[:3], names[3:],
        dynamic(names, [0, 1], [0, 1], group_axes, [0, 1], [0, 1]),
    )
    for n, b in [(3, 25), (1, 4), (4, 9)]:  # k = 6 above B = 4: K = B
        boxes, scores, groups = _case(n, b, seed=b, per_image_groups=per_image_groups)
        top_scores, index = fn(boxes, scores, groups)
        _assert_matches(top_scores, index, boxes, scores, groups, 0.5, k)
