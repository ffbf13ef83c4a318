"""The conversion + passes of nets with large weights: same nets as the generic path, less memory.

Converted fills and the rebuilt init net are written in place, weights are decoded one at a time,
shape inference sees no weight values and ``run_passes(inplace=True)`` copies no init net. These
tests pin the result to an independent reference path on real models:

* predict net: conversion with ONNX shape inference on the *full* model (the previous behaviour);
* converted init net: one ``make_operator_def`` fill per ONNX initializer (``numpy_helper`` values);
* final init net: the converted init net run in a ``Workspace``, each surviving parameter fetched
  with ``FetchBlob`` and turned into a ``make_operator_def`` fill;
* both nets equal to the copying ``run_passes`` on the reference conversion, byte for byte;

and bound the peak memory of converting + passing one 128 MB weight (in a fresh process).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from onnx import numpy_helper

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.export import Caffe2Tracer
from detectron2_export.export.onnx_to_caffe2 import context, onnx_graph_to_caffe2_net
from detectron2_export.export.onnx_to_caffe2.tensors import fill_op_type
from detectron2_export.export.passes import run_passes
from detectron2_export.export.protobuf_utils import make_operator_def

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _shapes_model():
    """The bundled shapes Mask R-CNN (R18-FPN) with its checkpoint, and one val image."""
    from detectron2_export.checkpoint import DetectionCheckpointer
    from detectron2_export.config import get_cfg
    from detectron2_export.data import DatasetCatalog
    from detectron2_export.data.dataset_mapper import DatasetMapper
    from detectron2_export.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(os.path.join(REPO, "models", "mask_rcnn_R_18_FPN_shapes.pkl"))
    return cfg, model, [DatasetMapper(cfg, is_train=False)(DatasetCatalog.get("shapes_val")[0])]


def _mask_rcnn_r50_model():
    """mask_rcnn_R_50_FPN_3x with the detection-giving random init of the model-level export tests."""
    from tests.export.test_caffe2_export_models import build_random_model

    cfg, model, inputs, _ = build_random_model("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x")
    return cfg, model, inputs


@pytest.fixture(
    scope="module",
    params=[_shapes_model, pytest.param(_mask_rcnn_r50_model, marks=pytest.mark.slow)],
    ids=["shapes_R18", "mask_rcnn_R_50_FPN_3x"],
)
def traced(request):
    """(ONNX model, tensor inputs) of a Caffe2-traceable detection model."""
    tracer = Caffe2Tracer(*request.param())
    return tracer.export_onnx(), tracer.traceable_inputs


def _reference_fill_op(name: str, array: np.ndarray) -> caffe2_pb2.OperatorDef:
    values = array.astype(np.int64).ravel() if array.dtype == np.bool_ else array.ravel()
    return make_operator_def(fill_op_type(array.dtype), [], [name], values=values, shape=list(array.shape))


def _reference_conversion(onnx_model, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(context, "_for_shape_inference", lambda model: model)
        return onnx_graph_to_caffe2_net(onnx_model)


def test_converted_nets_equal_the_reference(traced, monkeypatch):
    onnx_model, _ = traced
    init_net, predict_net = onnx_graph_to_caffe2_net(onnx_model)
    ref_init, ref_predict = _reference_conversion(onnx_model, monkeypatch)
    assert predict_net.SerializeToString() == ref_predict.SerializeToString()
    assert init_net.SerializeToString() == ref_init.SerializeToString()

    initializers = {i.name: i for i in onnx_model.graph.initializer}
    from_onnx = [op for op in init_net.op if op.output[0] in initializers]
    assert len(from_onnx) >= 0.9 * len(init_net.op) and init_net.name == f"{onnx_model.graph.name}_init"
    for op in from_onnx:
        expected = _reference_fill_op(op.output[0], numpy_helper.to_array(initializers[op.output[0]]))
        assert op.SerializeToString() == expected.SerializeToString(), op.output[0]


def test_final_nets_equal_the_reference(traced, monkeypatch):
    onnx_model, tensor_inputs = traced
    ref_init, ref_predict = _reference_conversion(onnx_model, monkeypatch)
    ref_predict_out, ref_init_out = run_passes(ref_predict, ref_init, tensor_inputs)

    predict_net, init_net = run_passes(*reversed(onnx_graph_to_caffe2_net(onnx_model)), tensor_inputs, inplace=True)
    assert predict_net.SerializeToString() == ref_predict_out.SerializeToString()
    assert init_net.SerializeToString() == ref_init_out.SerializeToString()

    # the final init net: the parameters the predict net still reads, as the converted init net
    # computes them, in its order, one generic fill each
    ws = Workspace("test_large_weights")
    ws.RunNetOnce(ref_init)
    kept = [name for name in ref_init.external_output if name in set(predict_net.external_input)]
    assert list(init_net.external_output) == kept and init_net.name == ""
    for op, name in zip(init_net.op, kept, strict=True):
        assert op.SerializeToString() == _reference_fill_op(name, ws.FetchBlob(name)).SerializeToString(), name


_PEAK_PROBE = textwrap.dedent("""
    import numpy as np, torch
    from onnx import TensorProto, helper, numpy_helper
    import detectron2_export.caffe2.ops  # imported before measuring
    from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
    from detectron2_export.export.passes import run_passes

    def status(key):
        return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024

    n_out, n_in = 4096, 8192
    weight = np.random.default_rng(0).standard_normal((n_out, n_in), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    del weight
    open("/proc/self/clear_refs", "w").write("5")  # restart the peak (VmHWM) from here
    base = status("VmRSS")
    init_net, predict_net = onnx_graph_to_caffe2_net(model)
    predict_net, init_net = run_passes(predict_net, init_net, [torch.zeros(1, n_in)], inplace=True)
    assert len(init_net.op[0].arg[0].floats) == n_out * n_in
    print((status("VmHWM") - base) / (n_out * n_in * 4))
    """)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_peak_memory_of_one_large_weight():
    """Converting and passing a 128 MB weight peaks at ~4 weight sizes above the ONNX model: the
    converted init net, the fetched parameter, the rebuilt init net and one serialisation buffer.
    (Before: 9.4, from copies of whole nets and Python-side duplicates of each weight.)"""
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE], cwd=REPO, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    peak_in_weights = float(out.strip().splitlines()[-1])
    assert peak_in_weights <= 5.0, peak_in_weights
