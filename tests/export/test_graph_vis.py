import logging
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.export.graph_vis import run_and_save_graph, save_graph
from detectron2_export.export.protobuf_utils import make_operator_def

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz dot binary is not installed")


def _net():
    predict = caffe2_pb2.NetDef(name="predict", external_input=["data", "w"], external_output=["out"])
    predict.op.extend(
        [
            make_operator_def("Mul", ["data", "w"], ["scaled"], name="scale"),
            make_operator_def("Relu", ["scaled"], ["scaled"]),  # in place: a new version of "scaled"
            make_operator_def("Sigmoid", ["scaled"], ["out"]),
        ]
    )
    init = caffe2_pb2.NetDef(external_output=["w"])
    init.op.append(make_operator_def("GivenTensorFill", [], ["w"], values=[2.0, 3.0], shape=[2]))
    return predict, init


def _svg_texts(path):
    root = ET.parse(path).getroot()  # also checks the file is well-formed XML
    assert root.tag.endswith("svg")
    return [t.text for t in root.iter() if t.tag.endswith("text")]


@needs_dot
def test_full_graph_svg_has_ops_and_blob_versions(tmp_path):
    predict, _ = _net()
    path = tmp_path / "sub" / "net.svg"
    graph = save_graph(predict, str(path), op_only=False, blob_sizes={"data": (1, 2), "scaled": [1, 2]})
    texts = _svg_texts(path)
    assert ["scale/Mul (op#0)", "Relu (op#1)", "Sigmoid (op#2)"] == [t for t in texts if "op#" in t]
    assert texts.count("scaled") == 2  # one octagon per version
    assert texts.count("[1, 2]") == 3  # data, and both versions of scaled
    source = graph.source
    assert 'color="#0F9D58"' in source and 'fontcolor="#FFFFFF"' in source and "octagon" in source


@needs_dot
def test_op_only_graph_links_dependent_ops(tmp_path):
    predict, _ = _net()
    graph = save_graph(predict, str(tmp_path / "ops.svg"))
    assert "op0 -> op1" in graph.source and "op1 -> op2" in graph.source and "octagon" not in graph.source
    assert [t for t in _svg_texts(tmp_path / "ops.svg") if "op#" in t] == [
        "scale/Mul (op#0)",
        "Relu (op#1)",
        "Sigmoid (op#2)",
    ]


def test_unknown_extension_is_logged_not_raised(tmp_path, caplog):
    predict, _ = _net()
    with caplog.at_level(logging.ERROR):
        save_graph(predict, str(tmp_path / "net.jpeg"))
    assert "Incorrect format .jpeg" in caplog.text and not (tmp_path / "net.jpeg").exists()


def test_render_failure_is_logged_not_raised(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot binary to be found
    predict, _ = _net()
    with caplog.at_level(logging.ERROR):
        save_graph(predict, str(tmp_path / "net.svg"))
    assert "Error when writing graph to image" in caplog.text


@needs_dot
def test_run_and_save_graph_records_shapes(tmp_path):
    predict, init = _net()
    data = np.array([[1.0, -2.0]], np.float32)
    blobs = run_and_save_graph(predict, init, [data], str(tmp_path / "run.svg"))
    expected = 1 / (1 + np.exp(-np.maximum(data * [2.0, 3.0], 0)))
    np.testing.assert_allclose(blobs["out"], expected, rtol=1e-6)
    assert "[1, 2]" in _svg_texts(tmp_path / "run.svg") and "[2]" in _svg_texts(tmp_path / "run.svg")


def test_run_and_save_graph_survives_a_failing_op(tmp_path, caplog):
    predict, init = _net()
    predict.op.append(make_operator_def("Mul", ["out", "w"], ["bad"]))
    with caplog.at_level(logging.WARNING):
        blobs = run_and_save_graph(predict, init, [np.zeros((3, 3), np.float32)], str(tmp_path / "x.svg"))
    assert "Encountered error while running the net" in caplog.text and "w" in blobs
