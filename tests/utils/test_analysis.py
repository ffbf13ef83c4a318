"""utils.analysis: fvcore's counts through detectron2's list[dict] interface.

A hand-counted small model (flops = multiply-adds, fvcore's convention), fvcore run directly on
the same layers, and upstream's reference numbers for two model-zoo models.
"""

import fvcore.nn
import pytest
import torch
from torch import nn

from detectron2_export.errors import ExportError
from detectron2_export.utils.analysis import (
    activation_count_operators,
    find_unused_parameters,
    flop_count_operators,
    parameter_count,
    parameter_count_table,
)


class TinyDetector(nn.Module):
    """detectron2's interface: list[dict] with "image" in; list[dict] out in eval, losses in training."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)  # 3x8x8 -> 4x6x6
        self.fc = nn.Linear(4 * 6 * 6, 5)
        self.unused = nn.Linear(2, 2)

    def forward(self, batched_inputs):
        x = torch.stack([d["image"] for d in batched_inputs])
        scores = self.fc(torch.relu(self.conv(x)).flatten(1))
        if self.training:
            return {"loss_a": scores.sum(), "loss_b": scores.mean()}
        return [{"scores": s} for s in scores]


CONV_FLOPS = 4 * 6 * 6 * (3 * 3 * 3)  # one multiply-add per output element and filter tap: 3888
LINEAR_FLOPS = 5 * 144  # 720


def inputs():
    return [{"image": torch.rand(3, 8, 8), "height": 16, "width": 16, "file_name": "unused.jpg"}]


def test_flops_hand_counted_and_equal_to_fvcore():
    model = TinyDetector().train()
    flops = flop_count_operators(model, inputs())
    assert flops == pytest.approx({"conv": CONV_FLOPS / 1e9, "linear": LINEAR_FLOPS / 1e9}, rel=1e-12)
    assert model.training  # restored
    plain = nn.Sequential(model.conv, nn.ReLU(), nn.Flatten(), model.fc)
    reference = fvcore.nn.FlopCountAnalysis(plain, torch.rand(1, 3, 8, 8)).by_operator()
    assert {k: v / 1e9 for k, v in reference.items()} == pytest.approx(flops, rel=1e-12)


def test_activations_hand_counted_and_equal_to_fvcore():
    model = TinyDetector().eval()
    counts = activation_count_operators(model, inputs())
    assert dict(counts) == pytest.approx({"conv": 4 * 6 * 6 / 1e6, "linear": 5 / 1e6}, rel=1e-12)  # millions
    plain = nn.Sequential(model.conv, nn.ReLU(), nn.Flatten(), model.fc)
    reference, _ = fvcore.nn.activation_count(plain, (torch.rand(1, 3, 8, 8),))
    assert dict(reference) == pytest.approx(dict(counts), rel=1e-12)
    with pytest.raises(ExportError, match=r"len\(inputs\)=2, expected 1"):
        activation_count_operators(model, inputs() * 2)


def test_parameter_count_and_table():
    model = TinyDetector()
    counts = parameter_count(model)
    assert counts[""] == 112 + 725 + 6
    assert (counts["conv"], counts["fc"], counts["unused"], counts["fc.weight"]) == (4 * 27 + 4, 144 * 5 + 5, 6, 720)
    table = parameter_count_table(model)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()[2:]}
    assert (rows["model"], rows["conv"], rows["fc"], rows["unused"]) == ("0.8K", "0.1K", "0.7K", "6")  # fvcore's rounding
    assert (rows["conv.weight"], rows["fc.weight"]) == ("(4, 3, 3, 3)", "(5, 144)")


def test_find_unused_parameters():
    model = TinyDetector().train()
    assert find_unused_parameters(model, inputs()) == ["unused.weight", "unused.bias"]
    assert all(p.grad is None for p in model.parameters())  # cleared afterwards
    with pytest.raises(ExportError, match="model.training=False, expected a model in training mode"):
        find_unused_parameters(model.eval(), inputs())


def _zoo_model(name):
    from detectron2_export.model_zoo import get_config
    from detectron2_export.modeling import build_model

    cfg = get_config(name)
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    return build_model(cfg)


@pytest.mark.parametrize("name, total, backbone", [
    ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", 37915572, 31452352),
    ("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", 41699936, 26799296),
])
def test_parameter_count_of_model_zoo_models_as_upstream(name, total, backbone):
    """upstream's tests/test_model_analysis.py numbers."""
    counts = parameter_count(_zoo_model(name))
    assert (counts[""], counts["backbone"]) == (total, backbone)


@pytest.mark.slow
def test_flops_of_faster_rcnn_as_upstream():
    """upstream: 117 GFlops of convolutions (backbone and RPN: the box head is linear) at 800x800."""
    torch.set_num_threads(1)
    model = _zoo_model("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    flops = flop_count_operators(model, [{"image": torch.rand(3, 800, 800), "test_unused": "abcd"}])
    assert int(flops["conv"]) == 117
    assert 0 < flops["linear"] < 1
