import numpy as np
import pytest
import torch
from onnx import helper
from torchvision.ops import roi_align

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import make_model, run_caffe2

CAFFE2_DOMAIN = "org.pytorch._caffe2"
RNG = np.random.default_rng(0)


def _roi_align_model(domain=CAFFE2_DOMAIN):
    node = helper.make_node(
        "RoIAlign",
        ["features", "rois"],
        ["pooled"],
        domain=domain,
        order="NCHW",
        spatial_scale=0.5,
        pooled_h=2,
        pooled_w=3,
        sampling_ratio=2,
        aligned=1,
    )
    inputs = {"features": np.zeros((1, 2, 8, 8), np.float32), "rois": np.zeros((2, 5), np.float32)}
    return make_model(node, inputs, ["pooled"], extra_opsets={domain: 1})


def test_custom_op_keeps_type_and_attributes_as_arguments():
    _, net = onnx_graph_to_caffe2_net(_roi_align_model())
    (op,) = net.op
    assert op.type == "RoIAlign" and list(op.input) == ["features", "rois"]
    args = {a.name: a for a in op.arg}
    assert args["order"].s == b"NCHW" and args["spatial_scale"].f == 0.5
    assert (args["pooled_h"].i, args["pooled_w"].i, args["sampling_ratio"].i, args["aligned"].i) == (2, 3, 2, 1)


@pytest.mark.parametrize("domain", [CAFFE2_DOMAIN, "_caffe2"])
def test_custom_roi_align_runs_like_torchvision(domain):
    features = RNG.standard_normal((1, 2, 8, 8)).astype(np.float32)
    rois = np.array([[0, 1.0, 2.0, 9.0, 12.0], [0, 0.0, 0.0, 4.0, 3.0]], np.float32)
    init_net, predict_net = onnx_graph_to_caffe2_net(_roi_align_model(domain))
    (got,) = run_caffe2(init_net, predict_net, {"features": features, "rois": rois})
    expected = roi_align(torch.from_numpy(features), torch.from_numpy(rois), (2, 3), 0.5, 2, aligned=True)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_unknown_caffe2_op_is_refused_with_the_supported_list():
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain=CAFFE2_DOMAIN, name="mystery")
    model = make_model(node, {"x": np.zeros(1, np.float32)}, ["y"], extra_opsets={CAFFE2_DOMAIN: 1})
    with pytest.raises(UnsupportedOnnxNodeError) as info:
        onnx_graph_to_caffe2_net(model)
    message = str(info.value)
    assert "'mystery'" in message and "op_type='NoSuchOp'" in message and CAFFE2_DOMAIN in message
    assert "_caffe2::RoIAlign" in message and "Conv" in message


def test_aten_fallback_node_becomes_aten_op():
    node = helper.make_node(
        "ATen",
        ["x", "w", "b"],
        ["y"],
        domain="org.pytorch.aten",
        operator="group_norm",
        num_groups=2,
        eps=1e-5,
        cudnn_enabled=1,
    )
    model = make_model(
        node,
        {"x": np.zeros((1, 4, 2, 2), np.float32)},
        ["y"],
        {"w": np.ones(4, np.float32), "b": np.zeros(4, np.float32)},
        extra_opsets={"org.pytorch.aten": 1},
    )
    _, net = onnx_graph_to_caffe2_net(model)
    assert net.op[0].type == "ATen"
    assert {a.name for a in net.op[0].arg} == {"operator", "num_groups", "eps", "cudnn_enabled"}
