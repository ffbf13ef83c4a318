"""FastRCNNConvFCHead: detectron2's layer names, output shape and computation."""

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.roi_heads.box_head import FastRCNNConvFCHead, build_box_head


def test_fc_head_from_config():
    cfg = get_cfg()
    cfg.MODEL.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 16
    head = build_box_head(cfg, ShapeSpec(channels=3, height=7, width=7))
    assert isinstance(head, FastRCNNConvFCHead)
    names = [name for name, _ in head.named_children()]
    assert names == ["flatten", "fc1", "fc_relu1", "fc2", "fc_relu2"]
    assert head.fc1.weight.shape == (16, 147) and head.fc2.weight.shape == (16, 16)
    assert head.output_shape == ShapeSpec(channels=16)

    x = torch.randn(4, 3, 7, 7)
    hidden = F.relu(F.linear(x.flatten(1), head.fc1.weight, head.fc1.bias))
    expected = F.relu(F.linear(hidden, head.fc2.weight, head.fc2.bias))
    torch.testing.assert_close(head(x), expected)


def test_conv_head_with_norm():
    head = FastRCNNConvFCHead(
        ShapeSpec(channels=3, height=5, width=5), conv_dims=[4, 4], fc_dims=[], conv_norm="BN"
    ).eval()
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes["conv1.weight"] == (4, 3, 3, 3) and "conv1.bias" not in shapes  # norm -> no bias
    assert shapes["conv2.norm.running_mean"] == (4,)
    assert head.output_shape == ShapeSpec(channels=4, height=5, width=5)
    assert head(torch.randn(2, 3, 5, 5)).shape == (2, 4, 5, 5)


def test_needs_at_least_one_layer():
    with pytest.raises(AssertionError):
        FastRCNNConvFCHead(ShapeSpec(channels=3, height=5, width=5), conv_dims=[], fc_dims=[])
