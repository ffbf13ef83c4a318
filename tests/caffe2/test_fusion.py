"""Load-time Conv(+Add)(+Relu) fusion (``fusion.py``): which chains fuse, and that results equal torch's.

Reference: the same computation written directly with ``F.conv2d``, ``+`` and ``relu`` on the
original (plain NCHW) tensors, at rtol/atol 1e-5 (the fused kernel is oneDNN's convolution, as
``conv2d`` on CPU; only the summation order of the reduction may differ).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.fusion import fusion_available
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from tests.caffe2.helpers import make_op

pytestmark = pytest.mark.skipif(not fusion_available(), reason="this torch has no oneDNN pointwise convolution")

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _params(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "w1": torch.randn(8, 4, 3, 3, generator=g) * 0.3,
        "b1": torch.randn(8, generator=g),
        "w2": torch.randn(8, 8, 1, 1, generator=g) * 0.3,
        "b2": torch.randn(8, generator=g),
        "w3": torch.randn(8, 4, 3, 3, generator=g) * 0.3,
    }


def init_net(params: dict[str, torch.Tensor]) -> caffe2_pb2.NetDef:
    """An init net filling each parameter (for the runtime tests of fusion, precision and profiling)."""
    return caffe2_pb2.NetDef(
        name="init",
        op=[make_op("GivenTensorFill", [], [k], values=v.numpy().reshape(-1), shape=list(v.shape)) for k, v in params.items()],
    )


def _model(ops: list[caffe2_pb2.OperatorDef], outputs: list[str], params: dict[str, torch.Tensor]) -> ProtobufModel:
    init = init_net(params)
    predict = caffe2_pb2.NetDef(name="net", op=ops, external_input=["x", "r", *params], external_output=outputs)
    return ProtobufModel(predict, init)


def _op_types(model: ProtobufModel) -> list[str]:
    return [op.op_type for op in model._net.ops]


def test_residual_block_fuses_into_two_ops_and_matches_torch():
    p = _params()
    ops = [
        make_op("Conv", ["x", "w1", "b1"], ["c1"], kernel=3, pad=1),
        make_op("Relu", ["c1"], ["r1"]),
        make_op("Conv", ["r1", "w2", "b2"], ["c2"], kernel=1),
        make_op("Conv", ["x", "w3"], ["short"], kernel=3, pad=1),  # the Add's other operand comes after c2
        make_op("Add", ["c2", "short"], ["s"]),
        make_op("Relu", ["s"], ["y"]),
    ]
    model = _model(ops, ["y"], p)
    assert _op_types(model) == ["Conv+Relu", "Conv", "Conv+Add+Relu"]
    x, r = torch.randn(2, 4, 9, 11), torch.zeros(1)
    (y,) = model([x, r])
    r1 = F.conv2d(x, p["w1"], p["b1"], padding=1).relu()
    expected = (F.conv2d(r1, p["w2"], p["b2"]) + F.conv2d(x, p["w3"], padding=1)).relu()
    torch.testing.assert_close(y, expected, **TOL)
    # another size than the one the filters were packed for
    (y,) = model([torch.randn(1, 4, 33, 17), r])
    assert y.shape == (1, 8, 33, 17)


def test_add_with_the_residual_first_and_no_relu():
    p = _params(1)
    ops = [make_op("Conv", ["x", "w1", "b1"], ["c"], kernel=3, pad=1, stride=2), make_op("Add", ["r", "c"], ["y"])]
    model = _model(ops, ["y"], p)
    assert _op_types(model) == ["Conv+Add"]
    x = torch.randn(1, 4, 10, 12)
    r = torch.randn(1, 8, 5, 6)
    (y,) = model([x, r])
    torch.testing.assert_close(y, r + F.conv2d(x, p["w1"], p["b1"], stride=2, padding=1), **TOL)
    # a broadcasting residual: the fused kernel cannot take it, the chain runs op by op
    r_small = torch.randn(1, 8, 1, 1)
    (y,) = model([x, r_small])
    torch.testing.assert_close(y, r_small + F.conv2d(x, p["w1"], p["b1"], stride=2, padding=1), **TOL)


def _conv(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.conv2d(x, p["w1"], p["b1"], padding=1)


@pytest.mark.parametrize(
    "ops, outputs, expected_types, reference",
    [
        # the Conv output is also a net output: kept, the Relu stays separate
        (
            [make_op("Conv", ["x", "w1", "b1"], ["c"], kernel=3, pad=1), make_op("Relu", ["c"], ["y"])],
            ["c", "y"],
            ["Conv", "Relu"],
            lambda x, p: [_conv(x, p), _conv(x, p).relu()],
        ),
        # two readers of the Conv output
        (
            [
                make_op("Conv", ["x", "w1", "b1"], ["c"], kernel=3, pad=1),
                make_op("Relu", ["c"], ["y"]),
                make_op("Sigmoid", ["c"], ["z"]),
            ],
            ["y", "z"],
            ["Conv", "Relu", "Sigmoid"],
            lambda x, p: [_conv(x, p).relu(), _conv(x, p).sigmoid()],
        ),
        # asymmetric pads (t, l, b, r) = (1, 0, 0, 1): not fused, the regular Conv pads first
        (
            [make_op("Conv", ["x", "w1", "b1"], ["c"], kernel=3, pads=[1, 0, 0, 1]), make_op("Relu", ["c"], ["y"])],
            ["y"],
            ["Conv", "Relu"],
            lambda x, p: [F.conv2d(F.pad(x, (0, 1, 1, 0)), p["w1"], p["b1"]).relu()],
        ),
        # broadcast=1 Add
        (
            [make_op("Conv", ["x", "w1", "b1"], ["c"], kernel=3, pad=1), make_op("Add", ["c", "b1"], ["y"], broadcast=1, axis=1)],
            ["y"],
            ["Conv", "Add"],
            lambda x, p: [_conv(x, p) + p["b1"].reshape(1, -1, 1, 1)],
        ),
    ],
    ids=["output_kept", "two_readers", "asymmetric_pads", "broadcast_add"],
)
def test_chains_that_must_not_fuse(ops, outputs, expected_types, reference):
    p = _params(2)
    model = _model(ops, outputs, p)
    assert _op_types(model) == expected_types
    x = torch.randn(1, 4, 7, 8)
    for got, expected in zip(model([x, torch.zeros(1)]), reference(x, p), strict=True):
        torch.testing.assert_close(got, expected, **TOL)


def test_copies_of_parameters_are_folded_so_their_convolutions_fuse():
    """The exporter's Copy of a shared initializer (here the bias) is run once at load time."""
    p = _params(3)
    ops = [
        make_op("Copy", ["b1"], ["b1_copy"]),
        make_op("Copy", ["b1"], ["b1_out"]),  # a net output: kept as an op
        make_op("Conv", ["x", "w1", "b1_copy"], ["c"], kernel=3, pad=1),
        make_op("Relu", ["c"], ["y"]),
    ]
    model = _model(ops, ["y", "b1_out"], p)
    assert _op_types(model) == ["Copy", "Conv+Relu"]
    x = torch.randn(2, 4, 7, 8)
    y, b1_out = model([x, torch.zeros(1)])
    torch.testing.assert_close(y, _conv(x, p).relu(), **TOL)
    torch.testing.assert_close(b1_out, p["b1"], rtol=0, atol=0)
    assert _op_types(ProtobufModel(model.predict_net, init_net(p), fuse=False)) == ["Copy", "Copy", "Conv", "Relu"]
