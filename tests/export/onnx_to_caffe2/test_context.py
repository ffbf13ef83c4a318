"""ConversionContext with large weights: shape inference sees no weight values yet infers what it
inferred on the full model, and initializers are decoded only when read."""

import numpy as np
import onnx
from onnx import helper, numpy_helper

from detectron2_export.export.onnx_to_caffe2 import context
from detectron2_export.export.onnx_to_caffe2.context import ConversionContext
from tests.export.onnx_to_caffe2.helpers import make_model

RNG = np.random.default_rng(0)
BIG = RNG.standard_normal((64, 128)).astype(np.float32)  # 8192 elements: above the inference limit
SMALL = RNG.standard_normal(8).astype(np.float32)


def _model() -> onnx.ModelProto:
    """Reshape -> Gemm (big weight) -> Add (small bias) -> Reshape with a constant target, whose
    output shape inference can only know from the target's values."""
    nodes = [
        helper.make_node("Reshape", ["x", "flat"], ["x2"]),
        helper.make_node("Gemm", ["x2", "w"], ["y"], transB=1),
        helper.make_node("Slice", ["y", "starts", "ends", "axes"], ["y8"]),
        helper.make_node("Add", ["y8", "b"], ["z"]),
        helper.make_node("Reshape", ["z", "target"], ["out"]),
    ]
    inits = {
        "flat": np.array([2, 128], np.int64),
        "w": BIG,
        "starts": np.array([0], np.int64),
        "ends": np.array([8], np.int64),
        "axes": np.array([1], np.int64),
        "b": SMALL,
        "target": np.array([4, 2, 2], np.int64),
    }
    return make_model(nodes, {"x": np.zeros((2, 2, 64), np.float32)}, ["out"], inits)


def _full_model_shapes(model: onnx.ModelProto) -> dict:
    """What ``_static_shapes`` computed before: inference on the model with every weight."""
    graph = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    shapes = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if info.type.tensor_type.HasField("shape"):
            dims = info.type.tensor_type.shape.dim
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    shapes.update({i.name: list(i.dims) for i in graph.initializer})
    return shapes


def test_static_shapes_equal_full_model_inference():
    model = _model()
    shapes = context._static_shapes(model)
    assert shapes == _full_model_shapes(model)
    assert shapes["out"] == [4, 2, 2] and shapes["y"] == [2, 64] and shapes["w"] == [64, 128]


def test_shape_inference_gets_no_large_weights(monkeypatch):
    seen = []
    infer = onnx.shape_inference.infer_shapes
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda m, **kw: seen.append(m) or infer(m, **kw))
    context._static_shapes(_model())
    (light,) = seen
    assert [i.name for i in light.graph.initializer] == ["flat", "starts", "ends", "axes", "b", "target"]
    (w,) = [i for i in light.graph.input if i.name == "w"]
    assert w.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in w.type.tensor_type.shape.dim] == [64, 128]
    assert light.ByteSize() < BIG.nbytes / 4


def test_initializers_are_decoded_on_demand():
    ctx = ConversionContext(_model())
    assert ctx._constants == {}
    np.testing.assert_array_equal(ctx.initializer_value("w"), BIG)
    assert "w" not in ctx._constants  # the converter's one-at-a-time read keeps nothing
    b = ctx.constant("b")
    np.testing.assert_array_equal(b, SMALL)
    assert ctx.initializer_value("b") is b  # a value a rule read is reused
    assert ctx.shape("w") == [64, 128] and ctx.constant("x") is None
    new = ctx.add_initializer("k", np.ones(2, np.float32))
    assert ctx.initializer_names() == ["flat", "w", "starts", "ends", "axes", "b", "target", new]


def test_initializer_in_graph_inputs_keeps_its_declared_type():
    """Old-style models (IR < 4) list every initializer among the graph inputs too."""
    model = _model()
    model.graph.input.append(helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [64, 128]))
    light = context._for_shape_inference(model)
    assert [i.name for i in light.graph.input].count("w") == 1
    assert context._static_shapes(model) == _full_model_shapes(model)
    assert numpy_helper.to_array(model.graph.initializer[1]).shape == (64, 128)  # the model is untouched
