"""``proposals.rpn_proposals``: the RPN of a whole batch in the graph (per-level top-k, decode, clip,
min size, NMS per level, post-NMS top-k), against detectron2's ``RPN.forward`` at test time."""

from typing import List

import torch
from torch import nn

from detectron2_export.export.onnx.isolation import BatchIsolation
from detectron2_export.export.onnx.proposals import rpn_proposals
from detectron2_export.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.proposal_generator.rpn import RPN, StandardRPNHead
from detectron2_export.structures import Instances

from .helpers import OnnxFunction, dynamic, image_list, level_features

STRIDES = [4, 8]
IN_FEATURES = ["p2", "p3"]


def _rpn() -> RPN:
    """Two levels, 3 anchors per location; top 25 per level, 12 after NMS, a minimum size of 2."""
    torch.manual_seed(0)
    head = StandardRPNHead(in_channels=4, num_anchors=3)
    for conv in head.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.normal_(conv.weight, std=0.3)
            nn.init.uniform_(conv.bias, -0.2, 0.2)
    return RPN(
        in_features=IN_FEATURES, head=head,
        anchor_generator=DefaultAnchorGenerator(sizes=[[8], [16]], aspect_ratios=[[0.5, 1.0, 2.0]], strides=STRIDES),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), pre_nms_topk=(50, 25), post_nms_topk=(20, 12),
        nms_thresh=0.6, min_box_size=2.0,
    ).eval()


def _features(n: int, height: int, width: int, seed: int) -> List[torch.Tensor]:
    return level_features(n, 4, height, width, STRIDES, seed)


def _reference(rpn: RPN, features: List[torch.Tensor], image_sizes: List[List[int]]) -> List[Instances]:
    with torch.no_grad():
        proposals, _ = rpn(image_list(image_sizes), dict(zip(IN_FEATURES, features)))
    return proposals


def _assert_matches(outputs, expected: Instances, i: int, atol: float) -> None:
    """Image i: the reference's proposals first, in its order, the rest marked not real."""
    boxes, keep = (torch.as_tensor(x) for x in outputs)
    m = len(expected)
    assert m > 0, f"image {i}: the case should have proposals"
    assert keep[i, :m].all() and not keep[i, m:].any(), f"image {i}: {int(keep[i].sum())} proposals, expected {m}"
    torch.testing.assert_close(boxes[i, :m], expected.proposal_boxes.tensor, rtol=0, atol=atol)
    assert (boxes[i, m:] == 0).all()


def test_torch_equals_rpn_forward_on_a_batch_of_full_size_images():
    """Images smaller than the batch are clipped to their own size (the anchors are the batch's)."""
    rpn = _rpn()
    features = _features(2, 40, 56, seed=0)
    sizes = [[40, 56], [40, 56]]
    with torch.no_grad():
        outputs = rpn_proposals(rpn, features, torch.tensor([[37, 50], [40, 56]]), torch.tensor(sizes))
    assert outputs[0].shape == (2, 12, 4)
    for i, expected in enumerate(_reference(rpn, features, [[37, 50], [40, 56]])):
        _assert_matches(outputs, expected, i, atol=0)


def test_a_smaller_image_of_a_batch_gets_its_single_image_proposals():
    rpn = _rpn()
    isolation = BatchIsolation([rpn])
    sizes = [[48, 64], [24, 40]]
    padded = torch.tensor(sizes)
    features = _features(2, 48, 64, seed=1)
    isolation.set_sizes(padded, torch.zeros(2, 3, 48, 64))
    with torch.no_grad():
        outputs = rpn_proposals(rpn, features, padded, padded)
    for i, (h, w) in enumerate(sizes):
        alone = [f[i : i + 1, :, : -(-h // s), : -(-w // s)] for f, s in zip(features, STRIDES)]
        isolation.set_sizes(padded[i : i + 1], torch.zeros(1, 3, h, w))
        # the head's convolutions on the cropped maps round differently: 1e-4 on boxes of ~50 pixels
        _assert_matches(outputs, _reference(rpn, alone, [[h, w]])[0], i, atol=1e-4)


class Proposals(nn.Module):
    def __init__(self, rpn: RPN) -> None:
        super().__init__()
        self.rpn = rpn

    def forward(self, p2, p3, image_sizes, padded_sizes):
        return rpn_proposals(self.rpn, [p2, p3], image_sizes, padded_sizes)


def test_onnx_equals_rpn_forward_on_other_shapes():
    rpn = _rpn()
    names = ["p2", "p3", "image_sizes", "padded_sizes", "proposals", "valid"]
    fn = OnnxFunction(
        Proposals(rpn), [*_features(2, 32, 32, seed=2), torch.tensor([[32, 32], [30, 31]]), torch.tensor([[32, 32], [32, 32]])],
        names[:4], names[4:], dynamic(names, [0, 2, 3], [0, 2, 3], [0], [0], [0, 1], [0, 1]),
    )
    for image_sizes, height, width in [([[64, 48], [60, 41], [64, 48]], 64, 48), ([[16, 16]], 16, 16)]:
        features = _features(len(image_sizes), height, width, seed=height)
        outputs = fn(*features, torch.tensor(image_sizes), torch.tensor([[height, width]] * len(image_sizes)))
        for i, expected in enumerate(_reference(rpn, features, image_sizes)):
            _assert_matches(outputs, expected, i, atol=1e-3)
