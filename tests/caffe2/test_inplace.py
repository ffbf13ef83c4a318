"""In-place element-wise execution: which ops qualify, and that results and protected blobs are unchanged."""

from __future__ import annotations

import numpy as np
import torch

from detectron2_export.caffe2.executor import Net
from detectron2_export.caffe2.inplace import plan_inplace
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from tests.caffe2.helpers import make_op


SINGLE_READER_OPS = [
    ("Conv", ["x", "w"], ["c"]),  # 0
    ("Relu", ["c"], ["r"]),  # 1: c fresh, read once -> in place
    ("Relu", ["x"], ["rx"]),  # 2: fed input -> never
    ("Relu", ["w"], ["rw"]),  # 3: parameter -> never
    ("Conv", ["r", "w"], ["d"]),  # 4
    ("Add", ["d", "r"], ["s"]),  # 5: d fresh, read once -> in place
    ("Relu", ["s"], ["t"]),  # 6: s read again by op 7 -> no
    ("Add", ["s", "t"], ["u"]),  # 7: s read by op 6 too -> no
    ("Sum", ["u"], ["v"]),  # 8: u fresh, read once (its kernel defers to Sum, one input) but v is not fresh
    ("Relu", ["v"], ["out"]),  # 9: producer not fresh -> no
    ("Conv", ["out", "w"], ["e"]),  # 10
    ("Relu", ["e"], ["f"]),  # 11: e is a protected (external output) name -> no
    ("Conv", ["f", "w"], ["g"]),  # 12
    ("Add", ["g", "g"], ["h"]),  # 13: read twice by the same op -> no
]
"""(type, inputs, outputs) of a net whose plan, with "e" protected, is ops 1, 5 and 8 (also run by
tests/cpp/test_inplace.py)."""

BLOB_VERSION_OPS = [
    ("Conv", ["x", "w"], ["a"]),  # 0
    ("Relu", ["a"], ["b"]),  # 1: this version of a is read only here
    ("Conv", ["b", "w"], ["a"]),  # 2: a rewritten
    ("Relu", ["a"], ["c"]),  # 3: the new version is read twice (3 and 4)
    ("Add", ["c", "a"], ["y"]),  # 4: c fresh (Relu), read once
]
"""A net whose plan, with "y" protected, is ops 1 and 4."""


def test_plan_picks_only_single_reader_fresh_temporaries():
    assert plan_inplace(SINGLE_READER_OPS, {"e"}) == {1, 5, 8}


def test_plan_follows_blob_versions():
    assert plan_inplace(BLOB_VERSION_OPS, {"y"}) == {1, 4}


def _residual_net() -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(
        name="residual",
        op=[
            make_op("Conv", ["data", "w", "b"], ["c1"], kernel=3, pad=1),
            make_op("Relu", ["c1"], ["r1"]),
            make_op("Conv", ["r1", "w", "b"], ["c2"], kernel=3, pad=1),
            make_op("Add", ["c2", "data"], ["s"], broadcast=1),
            make_op("Relu", ["s"], ["r2"]),
            make_op("Conv", ["r2", "w", "b"], ["c3"], kernel=3, pad=1),
            make_op("Sum", ["c3", "r1", "data"], ["t"]),
            make_op("Relu", ["data"], ["rd"]),
            make_op("Relu", ["w"], ["rw"]),
            make_op("Add", ["t", "rd"], ["out"]),
        ],
        external_input=["data", "w", "b"],
        external_output=["out", "rw", "r2"],
    )


def _init_net(w: torch.Tensor, b: torch.Tensor) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(
        name="init",
        op=[
            make_op("GivenTensorFill", [], ["w"], values=w.numpy().reshape(-1), shape=list(w.shape)),
            make_op("GivenTensorFill", [], ["b"], values=b.numpy(), shape=list(b.shape)),
        ],
    )


def test_inplace_net_gives_bitwise_equal_outputs_and_keeps_inputs_and_parameters():
    torch.manual_seed(0)
    data, w, b = torch.randn(2, 4, 6, 6), torch.randn(4, 4, 3, 3), torch.randn(4)
    net = _residual_net()
    results = []
    for inplace in (False, True):
        blobs = {"data": data.clone(), "w": w.clone(), "b": b.clone()}
        created = Net(net, blobs, inplace=inplace)
        created.run(blobs)
        assert torch.equal(blobs["data"], data) and torch.equal(blobs["w"], w) and torch.equal(blobs["b"], b)
        results.append({k: blobs[k] for k in net.external_output})
        if inplace:
            assert {op.op_type for op in created.ops if op.inplace_fn is not None} == {"Relu", "Add", "Sum"}
    for name in net.external_output:
        assert torch.equal(results[0][name], results[1][name]), name
    expected = torch.relu(torch.nn.functional.conv2d(torch.relu(torch.nn.functional.conv2d(data, w, b, padding=1)), w, b, padding=1) + data)
    assert torch.equal(results[1]["r2"], expected)


def test_protobuf_model_runs_repeatably_in_place():
    torch.manual_seed(1)
    data, w, b = torch.randn(1, 4, 5, 5), torch.randn(4, 4, 3, 3), torch.randn(4)
    net = _residual_net()
    model = ProtobufModel(net, _init_net(w, b))
    fed = data.clone()
    first = [t.clone() for t in model([fed])]
    second = model([fed])
    assert torch.equal(fed, data)
    assert torch.equal(torch.as_tensor(np.asarray(model._ws.FetchBlob("w"))), w)
    assert any(op.inplace_fn is not None for op in model._ws._nets[net.name].ops)
    blobs = {"data": data, "w": w, "b": b}
    Net(net, blobs).run(blobs)
    for name, a, c in zip(net.external_output, first, second):
        assert torch.equal(a, blobs[name]) and torch.equal(c, blobs[name]), name
