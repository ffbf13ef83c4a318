"""Drawing Caffe2 nets with Graphviz (SPEC 4.6): ``save_graph`` and ``run_and_save_graph``.

Upstream drew with pydot through ``caffe2.python.net_drawer``; this uses the ``graphviz`` package
(the ``dot`` binary renders). Ops are green boxes labelled ``"{type} (op#{i})"``; with
``op_only=False`` every *version* of every blob is its own octagon (so in-place ops do not make
cycles), optionally with its shape.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

import graphviz

from ..caffe2.proto import caffe2_pb2
from ..caffe2.workspace import Workspace
from ..errors import OperatorArgumentError, OperatorInputError, UnknownOperatorError

logger = logging.getLogger(__name__)

OP_STYLE = {"shape": "box", "color": "#0F9D58", "style": "filled", "fontcolor": "#FFFFFF"}
BLOB_STYLE = {"shape": "octagon"}
_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def _op_label(op: caffe2_pb2.OperatorDef, index: int) -> str:
    name = f"{op.name}/{op.type}" if op.name else op.type
    return graphviz.escape(f"{name} (op#{index})")


def _blob_label(name: str, blob_sizes: dict[str, Sequence[int]] | None) -> str:
    label = graphviz.escape(name)
    if blob_sizes is not None and name in blob_sizes:
        label += "\\n[" + ", ".join(str(d) for d in blob_sizes[name]) + "]"
    return label


def _full_graph(
    net: caffe2_pb2.NetDef, graph_name: str, blob_sizes: dict[str, Sequence[int]] | None
) -> graphviz.Digraph:
    graph = graphviz.Digraph(name=graph_name, graph_attr={"rankdir": "TB"})
    current: dict[str, str] = {}  # blob name -> node id of its current version
    ids = itertools.count()

    def blob_node(name: str) -> str:
        node_id = f"blob{next(ids)}"
        graph.node(node_id, label=_blob_label(name, blob_sizes), **BLOB_STYLE)
        current[name] = node_id
        return node_id

    for index, op in enumerate(net.op):
        op_id = f"op{index}"
        graph.node(op_id, label=_op_label(op, index), **OP_STYLE)
        for name in op.input:
            graph.edge(current[name] if name in current else blob_node(name), op_id)
        for name in op.output:
            graph.edge(op_id, blob_node(name))
    return graph


def _op_only_graph(net: caffe2_pb2.NetDef, graph_name: str) -> graphviz.Digraph:
    graph = graphviz.Digraph(name=graph_name, graph_attr={"rankdir": "TB"})
    producer: dict[str, int] = {}  # blob name -> op writing its current version
    for index, op in enumerate(net.op):
        graph.node(f"op{index}", label=_op_label(op, index), **OP_STYLE)
        for source in sorted({producer[name] for name in op.input if name in producer}):
            graph.edge(f"op{source}", f"op{index}")
        for name in op.output:
            producer[name] = index
    return graph


def save_graph(
    net: caffe2_pb2.NetDef,
    file_name: str,
    graph_name: str = "net",
    op_only: bool = True,
    blob_sizes: dict[str, Sequence[int]] | None = None,
) -> graphviz.Digraph:
    """Draw ``net`` into ``file_name`` (.png, .pdf or .svg, by extension) and return the graph.

    ``op_only`` draws ops and their dependencies only; otherwise blobs too, with ``blob_sizes``
    shapes. The parent directory is created; an unknown extension or a rendering failure (e.g. no
    ``dot`` binary) is logged, not raised.
    """
    graph = _op_only_graph(net, graph_name) if op_only else _full_graph(net, graph_name, blob_sizes)
    extension = os.path.splitext(file_name)[1]
    if extension not in _FORMATS:
        logger.error("Incorrect format %s: expected one of %s", extension, sorted(_FORMATS))
        return graph
    try:
        parent = os.path.dirname(file_name)
        if parent:
            os.makedirs(parent, exist_ok=True)
        rendered = graph.pipe(format=_FORMATS[extension])
        with open(file_name, "wb") as f:
            f.write(rendered)
    except Exception as e:  # drawing is a debugging aid: never fail an export over it
        logger.error("Error when writing graph to image %s: %s", file_name, e)
    return graph


def run_and_save_graph(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef,
    tensor_inputs: Sequence[Any],
    graph_save_path: str,
) -> dict[str, Any]:
    """Draw the net, run it on ``tensor_inputs`` (fed to the external inputs the init net does not
    fill, in order), and draw it again with the shape of every blob. Returns the fetched blobs.

    An op failing at run time is logged as a warning: the graph is still drawn with the shapes
    computed so far.
    """
    logger.info("Saving graph of ONNX exported model to %s ...", graph_save_path)
    save_graph(predict_net, graph_save_path, op_only=False)

    logger.info("Running ONNX exported model ...")
    ws = Workspace("__ws_tmp__")
    ws.RunNetOnce(init_net)
    initialized = set(ws.Blobs())
    uninitialized = [name for name in predict_net.external_input if name not in initialized]
    for name, blob in zip(uninitialized, tensor_inputs):
        ws.FeedBlob(name, blob)
    try:
        ws.RunNetOnce(predict_net)
    except (RuntimeError, OperatorInputError, OperatorArgumentError, UnknownOperatorError) as e:
        logger.warning("Encountered error while running the net: \n%s", e)

    blobs = {name: ws.FetchBlob(name) for name in ws.Blobs()}
    blob_sizes = {name: value.shape for name, value in blobs.items() if hasattr(value, "shape")}
    logger.info("Saving graph with blob shapes to %s ...", graph_save_path)
    save_graph(predict_net, graph_save_path, op_only=False, blob_sizes=blob_sizes)
    return blobs
