"""Channels-last filters and row-major inputs: which blobs change layout, and that values do not."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
import torchvision

from detectron2_export.caffe2.executor import Net
from detectron2_export.caffe2.layout import channels_last_filters
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from tests.caffe2.helpers import make_op


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def test_only_parameters_read_solely_as_filters_change_layout():
    net = caffe2_pb2.NetDef(
        op=[
            make_op("Conv", ["data", "w", "b"], ["c"], kernel=3, pad=1),
            make_op("Conv", ["c", "shared"], ["d"], kernel=3, pad=1),
            make_op("Relu", ["shared"], ["shared_relu"]),  # read outside a filter slot: keep
            make_op("Conv", ["d", "fed"], ["e"], kernel=3, pad=1),  # not in blobs (fed at run time)
            make_op("Conv", ["e", "w1d"], ["f"], kernel=1),  # 3-D filter (Conv1D): keep
            make_op("ConvTranspose", ["f", "wt"], ["g"], kernel=2, stride=2),
        ]
    )
    blobs = {
        "w": torch.randn(4, 4, 3, 3),
        "b": torch.randn(4),
        "shared": torch.randn(4, 4, 3, 3),
        "w1d": torch.randn(4, 4, 1),
        "wt": torch.randn(4, 2, 2, 2),
        "int_w": torch.ones(4, 4, 3, 3, dtype=torch.int64),
    }
    before = {k: v.clone() for k, v in blobs.items()}
    assert channels_last_filters(net, blobs) == ["w", "wt"]
    assert _is_channels_last(blobs["w"]) and _is_channels_last(blobs["wt"])
    for name in ("shared", "w1d", "b", "int_w"):
        assert blobs[name].is_contiguous(), name
    for name, value in before.items():
        assert torch.equal(blobs[name], value), name


def _conv_then_two_roi_aligns() -> caffe2_pb2.NetDef:
    roi_args = dict(spatial_scale=0.5, pooled_h=3, pooled_w=3, sampling_ratio=0, aligned=1)
    return caffe2_pb2.NetDef(
        name="conv_roi",
        op=[
            make_op("Conv", ["data", "w", "b"], ["feat"], kernel=3, pad=1),
            make_op("RoIAlign", ["feat", "rois"], ["box"], **roi_args),
            make_op("RoIAlign", ["feat", "rois"], ["mask"], **roi_args),
        ],
        external_input=["data", "w", "b", "rois"],
        external_output=["box", "mask", "feat"],
    )


def test_roi_align_reads_a_channels_last_blob_through_one_shared_row_major_copy():
    torch.manual_seed(0)
    data, w, b = torch.randn(1, 5, 12, 16), torch.randn(6, 5, 3, 3), torch.randn(6)
    rois = torch.tensor([[0.0, 1.0, 2.0, 20.0, 15.0], [0.0, 4.5, 0.0, 31.0, 23.0]])
    blobs = {"data": data, "w": w.contiguous(memory_format=torch.channels_last), "b": b, "rois": rois}
    net = Net(_conv_then_two_roi_aligns(), blobs)
    assert [op.contiguous_inputs for op in net.ops] == [(), (0,), (0,)]

    seen = []

    def spy(features, rois, **kwargs):
        seen.append(features)
        return net.ops[1].fn(features, rois, **kwargs)

    net.ops = (*net.ops[:2], replace(net.ops[2], fn=spy))
    net.run(blobs)

    expected_feat = F.conv2d(data, w, b, padding=1)
    assert blobs["feat"].is_contiguous()  # the row-major copy replaced the channels-last blob
    assert seen[0] is blobs["feat"]  # the second reader got that same copy, not a new one
    torch.testing.assert_close(blobs["feat"], expected_feat, rtol=1e-5, atol=1e-5)
    expected = torchvision.ops.roi_align(expected_feat, rois, (3, 3), 0.5, 0, True)
    torch.testing.assert_close(blobs["box"], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(blobs["mask"], expected, rtol=1e-5, atol=1e-5)


def test_protobuf_model_stores_filters_channels_last_and_matches_a_plain_run():
    torch.manual_seed(1)
    data, w, b = torch.randn(1, 5, 12, 16), torch.randn(6, 5, 3, 3), torch.randn(6)
    rois = torch.tensor([[0.0, 1.0, 2.0, 20.0, 15.0]])
    init = caffe2_pb2.NetDef(
        name="init",
        op=[
            make_op("GivenTensorFill", [], ["w"], values=w.numpy().reshape(-1), shape=list(w.shape)),
            make_op("GivenTensorFill", [], ["b"], values=b.numpy(), shape=list(b.shape)),
        ],
    )
    model = ProtobufModel(_conv_then_two_roi_aligns(), init)
    assert _is_channels_last(model._ws.blobs["w"])
    box, mask, feat = model([data, rois])
    expected_feat = F.conv2d(data, w, b, padding=1)
    torch.testing.assert_close(feat, expected_feat, rtol=1e-5, atol=1e-5)
    expected = torchvision.ops.roi_align(expected_feat, rois, (3, 3), 0.5, 0, True)
    torch.testing.assert_close(box, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mask, expected, rtol=1e-5, atol=1e-5)
