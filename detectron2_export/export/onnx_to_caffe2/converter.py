"""ONNX graph -> Caffe2 init and predict NetDefs (SPEC 4.2).

This module never names an op: every node goes through the rule the registry picks for it.
"""

from __future__ import annotations

import logging
from collections import Counter

import onnx

from ...caffe2.proto import caffe2_pb2
from .context import ConversionContext
from .registry import get_converter
from .tensors import set_fill_op

logger = logging.getLogger(__name__)


def _convert_nodes(graph: onnx.GraphProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    ops: list[caffe2_pb2.OperatorDef] = []
    for node in graph.node:
        rule = get_converter(node, ctx.node_opset(node))
        ops.extend(rule(node, ctx))
    return ops


def _drop_unread_constants(
    ops: list[caffe2_pb2.OperatorDef], ctx: ConversionContext, graph_outputs: set[str]
) -> list[caffe2_pb2.OperatorDef]:
    """Constants that rules folded into arguments (slice bounds, scales...) leave fills nobody reads."""
    read = {name for op in ops for name in op.input} | graph_outputs
    kept = []
    for op in ops:
        if not op.input and len(op.output) == 1 and op.output[0] in ctx.constant_outputs and op.output[0] not in read:
            logger.debug("Dropping constant %r: folded into the arguments of the ops that used it", op.output[0])
            continue
        kept.append(op)
    return kept


def format_net_table(net: caffe2_pb2.NetDef) -> str:
    """One line per op: ``type | inputs | outputs`` (upstream logs this after conversion)."""
    rows = [(op.type, ", ".join(op.input), ", ".join(op.output)) for op in net.op]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("type", "input", "output"))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(("type", "input", "output"), widths))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def onnx_graph_to_caffe2_net(onnx_model: onnx.ModelProto) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """Translate ``onnx_model`` into ``(init_net, predict_net)``.

    The init net fills every initializer the predict net reads (initializers folded into op
    arguments are left out); the predict net holds the translated nodes, ``Constant`` nodes
    becoming fill ops, with ``external_input`` = the graph's data inputs then the parameters, and
    ``external_output`` = the graph outputs. Raises ``UnsupportedOnnxNodeError`` for a node with
    no rule.
    """
    graph = onnx_model.graph
    ctx = ConversionContext(onnx_model)
    graph_outputs = [o.name for o in graph.output]
    ops = _drop_unread_constants(_convert_nodes(graph, ctx), ctx, set(graph_outputs))

    read = {name for op in ops for name in op.input} | set(graph_outputs)
    initializers = ctx.initializer_names()
    params = [name for name in initializers if name in read]

    init_net = caffe2_pb2.NetDef(name=f"{graph.name}_init")
    for name in params:  # built in place, one weight decoded at a time
        set_fill_op(init_net.op.add(), name, ctx.initializer_value(name))
    init_net.external_output.extend(params)

    predict_net = caffe2_pb2.NetDef(name=f"{graph.name}_predict")
    predict_net.op.extend(ops)
    predict_net.device_option.CopyFrom(caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CPU))
    initializer_set = set(initializers)
    predict_net.external_input.extend(i.name for i in graph.input if i.name not in initializer_set)
    predict_net.external_input.extend(params)
    predict_net.external_output.extend(graph_outputs)

    counts = Counter(op.type for op in predict_net.op)
    logger.info(
        "ONNX export Done. Exported predict_net (before optimizations): %d ops (%s), %d parameters",
        len(predict_net.op),
        ", ".join(f"{n} {t}" for t, n in counts.most_common()),
        len(params),
    )
    logger.debug("predict_net ops:\n%s", format_net_table(predict_net))
    return init_net, predict_net
