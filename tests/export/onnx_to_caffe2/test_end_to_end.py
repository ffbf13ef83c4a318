"""torch module -> export_onnx_model -> onnx_graph_to_caffe2_net -> run_passes -> our executor == torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.export.onnx_export import export_onnx_model
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from detectron2_export.export.passes import run_passes


class SmallNet(nn.Module):
    """conv + bn + relu + maxpool, a nearest x2 upsample added back, linear + softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.lateral = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, inputs):
        (x,) = inputs
        y = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        y = self.lateral(y) + F.interpolate(F.max_pool2d(y, 2), scale_factor=2, mode="nearest")
        y = F.max_pool2d(y, 2)
        return F.softmax(self.fc(y.flatten(1)), dim=1), y


class GroupNormHead(nn.Module):
    """GroupNorm, bilinear x2 (align_corners=False), slicing, concat, view -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.gn = nn.GroupNorm(3, 6)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, inputs):
        x, bias = inputs
        y = F.relu(self.gn(self.conv(x)))
        up = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        z = torch.cat([up[:, 1:3], up[:, :2] * bias], dim=1)
        return self.fc(z.view(z.size(0), -1)), up


def _randomize_bn(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)


def _run(predict_net, init_net, inputs):
    ws = Workspace("end_to_end")
    ws.RunNetOnce(init_net)
    for name, value in zip(predict_net.external_input, inputs):
        ws.FeedBlob(name, value)
    ws.RunNetOnce(predict_net)
    return [ws.FetchBlob(name) for name in predict_net.external_output]


@pytest.mark.parametrize(
    "model_cls, make_inputs",
    [
        (SmallNet, lambda g: (torch.rand(1, 3, 16, 16, generator=g),)),
        (GroupNormHead, lambda g: (torch.rand(1, 4, 4, 4, generator=g), torch.rand(1, 2, 8, 8, generator=g))),
    ],
)
def test_exported_net_matches_torch(model_cls, make_inputs):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = model_cls().eval()
    _randomize_bn(model)
    inputs = make_inputs(g)
    init_net, predict_net = onnx_graph_to_caffe2_net(export_onnx_model(model, inputs))
    predict_net, init_net = run_passes(predict_net, init_net, inputs)

    for sample in (inputs, make_inputs(g)):  # the traced sample and a new one of the same size
        with torch.no_grad():
            expected = model(sample)
        got = _run(predict_net, init_net, sample)
        assert len(got) == len(expected)
        for g_out, e_out in zip(got, expected):
            np.testing.assert_allclose(g_out, e_out.numpy(), rtol=1e-5, atol=1e-5)


def test_after_passes_the_init_net_holds_exactly_the_parameters():
    inputs = (torch.rand(1, 3, 16, 16),)
    init_net, predict_net = onnx_graph_to_caffe2_net(export_onnx_model(SmallNet().eval(), inputs))
    predict_net, init_net = run_passes(predict_net, init_net, inputs)
    params = list(init_net.external_output)
    assert list(predict_net.external_input) == [predict_net.external_input[0], *params]
    assert init_net.name == "" and [op.output[0] for op in init_net.op] == params
    read = {name for op in predict_net.op for name in op.input}
    assert set(params) <= read
