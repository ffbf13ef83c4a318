"""Remove the dynamic reshapes that only feed FC ops (SPEC 4.4.4).

``nn.Linear`` needs a 2-D input, so models ``.view()`` N-D features before it; Caffe2's FC flattens
N-D inputs itself, and the reshape (with the ops computing its target shape) is a burden for
mobile/int8 tools. A Reshape sub-graph is the ops on the paths from the Reshape's data blob to its
shape blob, plus the Reshape; it is removed when every reader of the Reshape output is an FC and
the sub-graph is isolated: one non-parameter input and one output.

"Parameters" here are version-0 blobs (params and graph inputs) and, beyond upstream, the outputs
of input-less fill ops in the predict net: current PyTorch exports the target shape of a static
``.view()`` as an ONNX Constant, which the converter turns into such a fill.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...caffe2.proto import caffe2_pb2
from .ssa import (
    OpSSA,
    VersionedBlob,
    get_consumer_map,
    get_producer_map,
    get_ssa,
    get_sub_graph_external_input_output,
    rename_op_output,
)

logger = logging.getLogger(__name__)

_SEARCH_MARGIN = 15
"""Ops searched before the data blob's first reader and after the shape blob's producer."""


def _get_dependency_chain(ssa: list[OpSSA], target: VersionedBlob, source: VersionedBlob) -> list[int]:
    """Sorted indices of the ops on any path from blob ``source`` to blob ``target`` (none: [])."""
    consumers, producers = get_consumer_map(ssa), get_producer_map(ssa)
    if not consumers[source]:
        return []
    start = max(0, min(i for i, _ in consumers[source]) - _SEARCH_MARGIN)
    end = producers[target][0] + _SEARCH_MARGIN if target in producers else start
    window = range(start, min(end, len(ssa) - 1) + 1)
    if len(window) > 2 * _SEARCH_MARGIN:
        logger.warning(
            "Subgraph between %s and %s is large (from op#%d to op#%d), it might take non-trivial time to search.",
            source,
            target,
            start,
            end,
        )
    reached = {source}
    for i in window:  # forward: blobs computed from the source
        if any(b in reached for b in ssa[i][0]):
            reached.update(ssa[i][1])
    needed = {target}
    for i in reversed(window):  # backward: blobs the target is computed from
        if any(b in needed for b in ssa[i][1]):
            needed.update(ssa[i][0])
    return [i for i in window if any(b in reached for b in ssa[i][0]) and any(b in needed for b in ssa[i][1])]


def identify_reshape_sub_graph(predict_net: caffe2_pb2.NetDef) -> list[list[int]]:
    """Every Reshape with a shape input as ``[Op_1, ..., Op_N, Reshape]``: the ops computing its
    shape from its data blob (possibly none), then the Reshape."""
    ssa, _ = get_ssa(predict_net)
    sub_graphs = []
    for i, op in enumerate(predict_net.op):
        if op.type == "Reshape" and len(op.input) == 2:
            data, shape = ssa[i][0]
            sub_graphs.append(_get_dependency_chain(ssa, shape, data) + [i])
    return sub_graphs


def _constant_blobs(ssa: list[OpSSA]) -> set[VersionedBlob]:
    return {blob for inputs, outputs in ssa if not inputs for blob in outputs}


def _split_inputs(
    ext_inputs: list[VersionedBlob], constants: set[VersionedBlob]
) -> tuple[list[VersionedBlob], list[VersionedBlob]]:
    """(non-parameter inputs, parameter inputs) of a sub-graph."""
    params = [b for b in ext_inputs if b[1] == 0 or b in constants]
    return [b for b in ext_inputs if b not in params], params


def _is_removable(predict_net: caffe2_pb2.NetDef, sub_graph: list[int]) -> bool:
    ssa, _ = get_ssa(predict_net)
    reshape_output = ssa[sub_graph[-1]][1][0]
    readers = get_consumer_map(ssa)[reshape_output]
    if not readers or any(predict_net.op[i].type != "FC" for i, _ in readers):
        return False
    ext_inputs, ext_outputs = get_sub_graph_external_input_output(predict_net, sub_graph)
    non_params, _ = _split_inputs(ext_inputs, _constant_blobs(ssa))
    return len(non_params) == 1 and len(ext_outputs) == 1


def _drop_unread_constants(predict_net: caffe2_pb2.NetDef, candidates: set[str]) -> None:
    read = {name for op in predict_net.op for name in op.input} | set(predict_net.external_output)
    kept = []
    for op in predict_net.op:
        if not op.input and op.output and all(o in candidates and o not in read for o in op.output):
            logger.info("Remove constant: %s from predict_net", list(op.output))
            continue
        kept.append(op)
    del predict_net.op[:]
    predict_net.op.extend(kept)


def remove_reshape_for_fc(
    predict_net: caffe2_pb2.NetDef, params: dict[str, Any]
) -> tuple[caffe2_pb2.NetDef, dict[str, Any]]:
    """Return copies of ``predict_net`` and ``params`` without the removable Reshape sub-graphs and
    without the parameters (and constants) only those sub-graphs used."""
    predict_net = copy.deepcopy(predict_net)
    params = dict(params)
    to_remove = [g for g in identify_reshape_sub_graph(predict_net) if _is_removable(predict_net, g)]

    removed_ops: set[int] = set()
    param_candidates: set[str] = set()
    for sub_graph in to_remove:
        logger.info("Remove Reshape sub-graph:\n%s", "".join(f"(#{i:>4})\n{predict_net.op[i]}" for i in sub_graph))
        reshape_id = sub_graph[-1]
        # the Reshape becomes an in-place identity on its data blob, so the FCs read that blob
        rename_op_output(predict_net, reshape_id, 0, predict_net.op[reshape_id].input[0])
        ext_inputs, _ = get_sub_graph_external_input_output(predict_net, sub_graph)
        _, param_inputs = _split_inputs(ext_inputs, _constant_blobs(get_ssa(predict_net)[0]))
        removed_ops.update(sub_graph)
        param_candidates.update(name for name, _ in param_inputs)

    kept = [op for i, op in enumerate(predict_net.op) if i not in removed_ops]
    del predict_net.op[:]
    predict_net.op.extend(kept)

    still_read = {name for op in predict_net.op for name in op.input} | set(predict_net.external_output)
    for name in sorted(param_candidates - still_read):
        if name in params:
            logger.info("Remove params: %s from init_net and predict_net.external_input", name)
            del params[name]
        if name in predict_net.external_input:
            predict_net.external_input.remove(name)
    _drop_unread_constants(predict_net, param_candidates)
    return predict_net, params
