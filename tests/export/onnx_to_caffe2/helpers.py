"""One-node (or few-node) ONNX models, converted to Caffe2 and run by the project's executor, against
``onnx.reference.ReferenceEvaluator`` — our take on onnx2torch's ``make_model_from_nodes`` check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net


def make_model(
    nodes: onnx.NodeProto | Sequence[onnx.NodeProto],
    inputs: dict[str, np.ndarray],
    outputs: Sequence[str],
    initializers: dict[str, np.ndarray] | None = None,
    opset: int = 11,
    extra_opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    """A model whose graph inputs have the dtypes and shapes of ``inputs``."""
    nodes = [nodes] if isinstance(nodes, onnx.NodeProto) else list(nodes)
    graph = helper.make_graph(
        nodes,
        "test_graph",
        [
            helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for name, v in inputs.items()
        ],
        [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None) for name in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v), name) for name, v in (initializers or {}).items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    return helper.make_model(graph, opset_imports=opsets)


def run_caffe2(
    init_net: caffe2_pb2.NetDef, predict_net: caffe2_pb2.NetDef, feeds: dict[str, np.ndarray]
) -> list[np.ndarray]:
    """Run the init net, feed ``feeds``, run the predict net; its external outputs as numpy."""
    ws = Workspace("onnx_to_caffe2_test")
    ws.RunNetOnce(init_net)
    for name, value in feeds.items():
        ws.FeedBlob(name, value)
    ws.RunNetOnce(predict_net)
    return [ws.FetchBlob(name) for name in predict_net.external_output]


def check_against_reference(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    rtol: float = 1e-5,
    atol: float = 1e-6,
    expected: Sequence[np.ndarray] | None = None,
) -> caffe2_pb2.NetDef:
    """Convert, run, and assert every output matches (dtype kind and shape too) the ONNX reference
    evaluator, or ``expected`` where it is not right for the opset; returns the predict net."""
    init_net, predict_net = onnx_graph_to_caffe2_net(model)
    got = run_caffe2(init_net, predict_net, feeds)
    if expected is None:
        expected = ReferenceEvaluator(model).run(None, feeds)
    assert len(got) == len(expected)
    for name, g, e in zip(predict_net.external_output, got, expected):
        g, e = np.asarray(g), np.asarray(e)
        assert g.shape == e.shape, f"{name}: shape {g.shape}, expected {e.shape}"
        assert g.dtype.kind == e.dtype.kind, f"{name}: dtype {g.dtype}, expected {e.dtype}"
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=name)
    return predict_net


def op_types(net: caffe2_pb2.NetDef) -> list[str]:
    return [op.type for op in net.op]
