"""DefaultAnchorGenerator: cell anchors, grid shifts and config broadcasting, by hand."""

import math

import pytest
import torch

from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import ANCHOR_GENERATOR_REGISTRY, build_anchor_generator
from detectron2_export.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2_export.structures import Boxes

from .stubs import zoo_cfg

# size 32: area 1024; ratio 0.5 -> w = sqrt(2048), h = sqrt(512); ratio 2 swaps them.
_R = math.sqrt(2048) / 2  # 22.627...
_r = math.sqrt(512) / 2  # 11.313...
CELL_32 = torch.tensor(
    [
        [-_R, -_r, _R, _r],
        [-16.0, -16.0, 16.0, 16.0],
        [-_r, -_R, _r, _R],
    ]
)


def test_cell_anchors_hand_computed():
    gen = DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[0.5, 1, 2]], strides=[4])
    (cell,) = list(gen.cell_anchors)
    torch.testing.assert_close(cell, CELL_32)
    assert cell.dtype == torch.float32
    assert gen.num_anchors == [3] and gen.num_cell_anchors == [3]


def test_cell_anchors_are_size_major():
    (cell,) = DefaultAnchorGenerator(sizes=[[8, 16]], aspect_ratios=[[1, 4]], strides=[4]).cell_anchors
    # size 8: ratio 1 -> 8x8, ratio 4 -> w 4, h 16; size 16: 16x16, then w 8 h 32
    expected = torch.tensor(
        [[-4.0, -4.0, 4.0, 4.0], [-2.0, -8.0, 2.0, 8.0], [-8.0, -8.0, 8.0, 8.0], [-4.0, -16.0, 4.0, 16.0]]
    )
    torch.testing.assert_close(cell, expected)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_grid_anchors_hand_computed(offset):
    stride = 8
    gen = DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[0.5, 1, 2]], strides=[stride], offset=offset)
    (anchors,) = gen([torch.zeros(1, 5, 2, 3)])  # H=2, W=3
    assert isinstance(anchors, Boxes)
    assert anchors.tensor.shape == (2 * 3 * 3, 4)
    # location-major (row by row), the 3 cell anchors innermost
    rows = []
    for y in range(2):
        for x in range(3):
            cx, cy = (x + offset) * stride, (y + offset) * stride
            rows.append(CELL_32 + torch.tensor([cx, cy, cx, cy]))
    torch.testing.assert_close(anchors.tensor, torch.cat(rows))


def test_multi_level_sizes_and_strides():
    gen = DefaultAnchorGenerator(sizes=[[32], [64]], aspect_ratios=[1.0], strides=[4, 8], offset=0.0)
    small, large = gen([torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 2, 1)])
    torch.testing.assert_close(small.tensor, torch.tensor([[-16.0, -16, 16, 16], [-12, -16, 20, 16]]))
    torch.testing.assert_close(large.tensor, torch.tensor([[-32.0, -32, 32, 32], [-32, -24, 32, 40]]))


def test_cell_anchors_are_non_persistent_buffers():
    gen = DefaultAnchorGenerator(sizes=[[32], [64]], aspect_ratios=[[1.0]], strides=[4, 8])
    assert gen.state_dict() == {}
    assert [name for name, _ in gen.named_buffers()] == ["cell_anchors.0", "cell_anchors.1"]
    assert len(gen.cell_anchors) == 2
    gen = gen.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in gen.cell_anchors)


def test_broadcast_params_errors():
    with pytest.raises(ValueError, match="sizes has 2 lists, expected 1 or one per input feature \\(3\\)"):
        DefaultAnchorGenerator(sizes=[[32], [64]], aspect_ratios=[[1.0]], strides=[4, 8, 16])
    with pytest.raises(ValueError, match="aspect_ratios=\\[\\]"):
        DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[], strides=[4])
    with pytest.raises(ValueError, match="offset=1.0"):
        DefaultAnchorGenerator(sizes=[[32]], aspect_ratios=[[1.0]], strides=[4], offset=1.0)


def test_build_from_fpn_config():
    cfg = zoo_cfg("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    shapes = [ShapeSpec(channels=256, stride=s) for s in (4, 8, 16, 32, 64)]
    gen = build_anchor_generator(cfg, shapes)
    assert type(gen) is ANCHOR_GENERATOR_REGISTRY.get("DefaultAnchorGenerator")
    assert gen.strides == [4, 8, 16, 32, 64] and gen.offset == 0.0
    assert gen.num_anchors == [3] * 5
    # one size per level: level i has anchors of size 32 * 2**i
    for i, cell in enumerate(gen.cell_anchors):
        widths = cell[:, 2] - cell[:, 0]
        heights = cell[:, 3] - cell[:, 1]
        torch.testing.assert_close(widths * heights, torch.full((3,), float(32 * 2**i) ** 2))
    anchors = gen([torch.zeros(1, 1, 4, 5)] * 5)
    assert [len(a) for a in anchors] == [60] * 5


def test_build_from_retinanet_config():
    cfg = zoo_cfg("COCO-Detection/retinanet_R_50_FPN_3x.yaml")
    shapes = [ShapeSpec(channels=256, stride=s) for s in (8, 16, 32, 64, 128)]
    gen = build_anchor_generator(cfg, shapes)
    assert gen.num_anchors == [9] * 5  # 3 octave scales x 3 ratios
    cell = next(iter(gen.cell_anchors))
    sizes = (cell[:, 2] - cell[:, 0])[1::3]  # ratio-1 anchors
    torch.testing.assert_close(sizes, 32 * torch.tensor([1.0, 2 ** (1 / 3), 2 ** (2 / 3)]))
