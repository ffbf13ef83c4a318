"""Remove CPU -> GPU -> CPU (and GPU -> CPU -> GPU) round trips of device copies (SPEC 4.4.2)."""

from __future__ import annotations

from ...caffe2.proto import caffe2_pb2
from .ssa import get_consumer_map, get_ssa

_REVERSE_COPY = {"CopyCPUToGPU": "CopyGPUToCPU", "CopyGPUToCPU": "CopyCPUToGPU"}


def _fuse_once(predict_net: caffe2_pb2.NetDef) -> bool:
    """Fuse the first fusable copy; whether one was found."""
    ssa, versions = get_ssa(predict_net)
    consumers = get_consumer_map(ssa)
    external_outputs = {(name, versions[name]) for name in predict_net.external_output}

    for op_id, op in enumerate(predict_net.op):
        if op.type not in _REVERSE_COPY:
            continue
        copied = ssa[op_id][1][0]
        reverse_ids = [i for i, _ in consumers[copied]]
        fusable = (
            len(reverse_ids) > 0
            and copied not in external_outputs
            and all(
                predict_net.op[i].type == _REVERSE_COPY[op.type] and ssa[i][1][0] not in external_outputs
                for i in reverse_ids
            )
        )
        if not fusable:
            continue
        # every reader of a round-trip copy reads the original blob instead
        for reverse_id in reverse_ids:
            for reader_id, input_id in consumers[ssa[reverse_id][1][0]]:
                predict_net.op[reader_id].input[input_id] = op.input[0]
        removed = {op_id, *reverse_ids}
        kept = [o for i, o in enumerate(predict_net.op) if i not in removed]
        del predict_net.op[:]
        predict_net.op.extend(kept)
        return True
    return False


def fuse_copy_between_cpu_and_gpu(predict_net: caffe2_pb2.NetDef) -> None:
    """Repeatedly drop a device copy whose readers are all the reverse copy, rewiring the readers of
    those reverse copies to the first copy's input, until none is left."""
    while _fuse_once(predict_net):
        pass
