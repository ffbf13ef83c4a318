"""``anchors``: per-level anchors computed in the graph from the feature-map sizes, against
``DefaultAnchorGenerator``, and which anchors lie in each image's own extent."""

import pytest
import torch
from torch import nn

from detectron2_export.errors import ExportError
from detectron2_export.export.onnx.anchors import anchor_strides, anchors_inside, grid_anchors
from detectron2_export.modeling.anchor_generator import DefaultAnchorGenerator

from .helpers import OnnxFunction, dynamic


def _generator(offset: float = 0.0) -> DefaultAnchorGenerator:
    return DefaultAnchorGenerator(sizes=[[8, 16], [32, 48]], aspect_ratios=[[0.5, 2.0]], strides=[4, 8], offset=offset)


class RotatedAnchorGenerator(nn.Module):
    """Stands for detectron2's rotated generator (not in this project): any other class is refused."""

    strides = [4]
    offset = 0.0


def _features(n: int, sizes, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 2, h, w, generator=g) for h, w in sizes]


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_grid_anchors_equal_default_anchor_generator(offset):
    generator = _generator(offset)
    features = _features(2, [(5, 7), (3, 4)], seed=0)
    expected = [b.tensor for b in generator(features)]
    for got, want in zip(grid_anchors(generator, features), expected):
        assert torch.equal(got, want)


def test_anchors_inside_hand_case():
    """Stride 8, two anchors per location; image 1 padded to 10 x 9 has a 2 x 2 extent (ceil)."""
    feature = torch.zeros(2, 1, 3, 4)
    inside = anchors_inside([feature], [8], 2, torch.tensor([[24, 32], [10, 9]]))[0]
    assert inside.shape == (2, 3 * 4 * 2) and inside[0].all()
    expected = torch.zeros(3, 4, 2, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(inside[1], expected.reshape(-1))


def test_anchor_strides_and_refusals():
    assert anchor_strides(_generator()) == ([4, 8], 4)
    mixed = DefaultAnchorGenerator(sizes=[[8], [16, 32]], aspect_ratios=[[1.0]], strides=[4, 8])
    with pytest.raises(ExportError, match=r"cell anchors per level \[1, 2\]"):
        anchor_strides(mixed)
    with pytest.raises(ExportError, match="RotatedAnchorGenerator, expected DefaultAnchorGenerator"):
        grid_anchors(RotatedAnchorGenerator(), _features(1, [(2, 2)], seed=0))


class Anchors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = _generator(0.5)

    def forward(self, p2, p3, padded_sizes):
        features = [p2, p3]
        return (*grid_anchors(self.generator, features), *anchors_inside(features, [4, 8], 4, padded_sizes))


def test_onnx_on_other_feature_sizes():
    names = ["p2", "p3", "padded_sizes", "anchors2", "anchors3", "inside2", "inside3"]
    fn = OnnxFunction(
        Anchors(), [*_features(2, [(4, 6), (2, 3)], seed=1), torch.tensor([[16, 24], [12, 8]])], names[:3], names[3:],
        dynamic(names, [0, 2, 3], [0, 2, 3], [0], [0], [0], [0, 1], [0, 1]),
    )
    module = Anchors()
    for sizes, padded in [([(9, 5), (5, 3)], [[36, 20], [20, 7], [3, 3]]), ([(1, 1), (1, 1)], [[4, 4]])]:
        features = _features(len(padded), sizes, seed=2)
        got = fn(*features, torch.tensor(padded))
        expected = module(*features, torch.tensor(padded))
        for g, e in zip(got, expected):
            assert torch.equal(torch.from_numpy(g), e)
