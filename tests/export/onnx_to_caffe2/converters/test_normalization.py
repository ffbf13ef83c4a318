import numpy as np
import pytest
from onnx import helper

from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)


@pytest.mark.parametrize("opset", [11, 14])
def test_batch_norm_is_spatial_bn_in_test_mode(opset):
    inits = {
        "scale": RNG.uniform(0.5, 2, 3).astype(np.float32),
        "bias": RNG.standard_normal(3).astype(np.float32),
        "mean": RNG.standard_normal(3).astype(np.float32),
        "var": RNG.uniform(0.5, 2, 3).astype(np.float32),
    }
    node = helper.make_node("BatchNormalization", ["x", *inits], ["y"], epsilon=1e-3)
    per_channel = {k: v.reshape(1, 3, 1, 1) for k, v in inits.items()}
    # written out: onnx.reference gets BatchNormalization-9 wrong (it normalises with batch statistics)
    expected = (X - per_channel["mean"]) / np.sqrt(per_channel["var"] + 1e-3) * per_channel["scale"] + per_channel[
        "bias"
    ]
    model = make_model(node, {"x": X}, ["y"], inits, opset=opset)
    net = check_against_reference(model, {"x": X}, atol=1e-5, expected=[expected])
    assert op_types(net) == ["SpatialBN"]
    assert {a.name for a in net.op[0].arg} == {"is_test", "epsilon", "order"}


def test_instance_norm_as_pytorch_exports_group_norm():
    # group_norm(x, 3 groups) -> InstanceNormalization over a (N, G, -1) view
    x = RNG.standard_normal((2, 6, 4, 5)).astype(np.float32)
    inits = {
        "view": np.array([0, 3, -1], np.int64),
        "ones": np.ones(3, np.float32),
        "zeros": np.zeros(3, np.float32),
    }
    nodes = [
        helper.make_node("Reshape", ["x", "view"], ["v"]),
        helper.make_node("InstanceNormalization", ["v", "ones", "zeros"], ["n"], epsilon=1e-5),
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Reshape", ["n", "s"], ["y"]),
    ]
    net = check_against_reference(make_model(nodes, {"x": x}, ["y"], inits), {"x": x}, atol=1e-5)
    assert op_types(net) == ["Reshape", "GroupNorm", "Shape", "Reshape"]
