"""Delete ops whose results nobody uses (SPEC 4.4.2)."""

from __future__ import annotations

from ...caffe2.proto import caffe2_pb2
from .ssa import get_consumer_map, get_ssa


def remove_dead_end_ops(net_def: caffe2_pb2.NetDef) -> None:
    """Walking backwards, remove every op none of whose outputs is an external output or read by an
    op that stays."""
    ssa, versions = get_ssa(net_def)
    external_outputs = {(name, versions[name]) for name in net_def.external_output}
    consumers = get_consumer_map(ssa)
    removed: set[int] = set()

    def is_dead_end(blob: tuple[str, int]) -> bool:
        if blob in external_outputs:
            return False
        readers = consumers[blob]
        return not readers or any(i in removed for i, _ in readers)

    for op_id in reversed(range(len(ssa))):
        if all(is_dead_end(blob) for blob in ssa[op_id][1]):
            removed.add(op_id)

    kept = [op for i, op in enumerate(net_def.op) if i not in removed]
    del net_def.op[:]
    net_def.op.extend(kept)
