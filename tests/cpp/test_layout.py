"""Channels-last filters and row-major RoIAlign inputs in the C++ runtime (cpp/src/layout.h).

One small net through ``caffe2_run_net --show_layout``: which filters the loader re-stores
channels-last (only init-net blobs read solely as Conv/ConvTranspose filters), that a convolution
with such a filter hands on a channels-last output (kept by ResizeNearest), that the two RoIAlign readers of one such blob
replace it by a row-major copy, and that every value still matches the torch reference and the
Python runtime (atol 1e-4).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.proto import caffe2_pb2
from tests.caffe2.helpers import make_op

from .cpp_runner import run_net_on_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

ATOL = 1e-4
ROI_ARGS = dict(spatial_scale=0.5, pooled_h=3, pooled_w=3, sampling_ratio=0, aligned=1)
OUTPUTS = ["box", "mask", "feat", "up", "side", "side_up", "shared_out", "fed_out", "rfeat", "rot"]


def _params() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = {"w": (6, 5, 3, 3), "b": (6,), "wt": (6, 4, 2, 2), "w2": (3, 5, 3, 3), "shared": (3, 5, 3, 3),
              "w3": (4, 5, 3, 3)}
    return {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}


def _nets(params: dict[str, torch.Tensor]) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    init = caffe2_pb2.NetDef(
        name="layout_init",
        op=[
            make_op("GivenTensorFill", [], [name], values=value.numpy().reshape(-1), shape=list(value.shape))
            for name, value in params.items()
        ],
    )
    predict = caffe2_pb2.NetDef(
        name="layout",
        op=[
            make_op("Conv", ["data", "w", "b"], ["feat"], kernel=3, pad=1),
            make_op("RoIAlign", ["feat", "rois"], ["box"], **ROI_ARGS),  # the box pooler
            make_op("RoIAlign", ["feat", "rois"], ["mask"], **ROI_ARGS),  # the mask pooler, same level
            make_op("ConvTranspose", ["mask", "wt"], ["up"], kernel=2, stride=2),
            make_op("Conv", ["data", "w2"], ["side"], kernel=3, pad=1),  # nobody converts it back
            make_op("ResizeNearest", ["side"], ["side_up"], width_scale=2.0, height_scale=2.0),  # FPN top-down
            make_op("Conv", ["data", "shared"], ["shared_out"], kernel=3, pad=1),
            make_op("Relu", ["shared"], ["shared_relu"]),  # read outside a filter slot: stays row-major
            make_op("Conv", ["data", "fed"], ["fed_out"], kernel=1),  # a graph input, fed at run time
            make_op("Conv", ["data", "w3"], ["rfeat"], kernel=3, pad=1),
            make_op("RoIAlignRotated", ["rfeat", "rrois"], ["rot"], **ROI_ARGS),
        ],
        external_input=["data", *params, "fed", "rois", "rrois"],
        external_output=OUTPUTS,
    )
    return predict, init


def _inputs() -> list[np.ndarray]:
    g = torch.Generator().manual_seed(1)
    data = torch.randn(1, 5, 12, 16, generator=g)
    fed = torch.randn(2, 5, 1, 1, generator=g)
    rois = torch.tensor([[0.0, 1.0, 2.0, 20.0, 15.0], [0.0, 4.5, 0.0, 31.0, 23.0]])
    rrois = torch.tensor([[0.0, 12.0, 10.0, 14.0, 8.0, 30.0], [0.0, 16.0, 12.0, 20.0, 16.0, -45.0]])
    return [t.numpy() for t in (data, fed, rois, rrois)]


def _torch_reference(params: dict[str, torch.Tensor], inputs: list[np.ndarray]) -> dict[str, torch.Tensor]:
    data, fed, rois = (torch.from_numpy(a) for a in inputs[:3])
    feat = F.conv2d(data, params["w"], params["b"], padding=1)
    pooled = torchvision.ops.roi_align(feat, rois, (3, 3), 0.5, 0, True)
    side = F.conv2d(data, params["w2"], padding=1)
    return {
        "box": pooled,
        "mask": pooled,
        "feat": feat,
        "up": F.conv_transpose2d(pooled, params["wt"], stride=2),
        "side": side,
        "side_up": side.repeat_interleave(2, 2).repeat_interleave(2, 3),
        "shared_out": F.conv2d(data, params["shared"], padding=1),
        "fed_out": F.conv2d(data, fed),
        "rfeat": F.conv2d(data, params["w3"], padding=1),
    }


@pytest.fixture(scope="module")
def layout_run(cpp_tools, tmp_path_factory):
    params = _params()
    predict, init = _nets(params)
    inputs = _inputs()
    d = tmp_path_factory.mktemp("layout")
    outputs, stdout = run_net_on_files(cpp_tools, d, predict, init, inputs, "--show_layout")
    assert list(outputs) == OUTPUTS
    return params, predict, init, inputs, outputs, stdout


def test_only_init_blobs_read_solely_as_filters_are_stored_channels_last(layout_run):
    *_, stdout = layout_run
    assert "Channels-last filters: ['w', 'w2', 'w3', 'wt']" in stdout.splitlines()


def test_roi_align_readers_share_a_row_major_copy_and_other_conv_outputs_stay_channels_last(layout_run):
    *_, stdout = layout_run
    layouts = dict(re.findall(r"Output '(\w+)' layout: ([\w-]+)", stdout))
    assert layouts == {
        "feat": "row-major",  # converted for the first RoIAlign and stored back
        "side": "channels-last",  # channels-last filter -> channels-last output
        "side_up": "channels-last",
        "shared_out": "row-major",
        "fed_out": "row-major",
        "box": "row-major",
        "mask": "row-major",
        "up": "channels-last",
        "rfeat": "row-major",  # converted for RoIAlignRotated
        "rot": "row-major",
    }


def test_outputs_match_torch_reference(layout_run):
    params, _, _, inputs, outputs, _ = layout_run
    for name, expected in _torch_reference(params, inputs).items():
        np.testing.assert_allclose(outputs[name], expected.numpy(), rtol=0, atol=ATOL, err_msg=name)


def test_outputs_match_python_runtime(layout_run):
    _, predict, init, inputs, outputs, _ = layout_run
    python_outputs = ProtobufModel(predict, init)(inputs)
    for name, expected in zip(OUTPUTS, python_outputs):
        np.testing.assert_allclose(outputs[name], expected.numpy(), rtol=0, atol=ATOL, err_msg=name)
    assert np.abs(outputs["rot"]).max() > 0.1  # the rotated rois sample inside the map
