"""Which device ("cpu" / "cuda") every versioned blob lives on (SPEC 4.4.7).

Starting from known blobs, one forward and one backward sweep over the ops apply: ``CopyCPUToGPU``
reads CPU and writes GPU, ``CopyGPUToCPU`` the reverse, any other op keeps all its inputs and
outputs on one device. Used to place ops of GPU exports and by ``Caffe2Model`` for output devices.
"""

from __future__ import annotations

from collections.abc import Callable

from ...caffe2.proto import caffe2_pb2
from .ssa import VersionedBlob, get_ssa

Status = str | None
StatusUpdater = Callable[[caffe2_pb2.OperatorDef, list[Status], list[Status]], tuple[list[Status], list[Status]]]


def _generic_status_identifier(
    predict_net: caffe2_pb2.NetDef, status_updater: StatusUpdater, known_status: dict[VersionedBlob, str]
) -> dict[VersionedBlob, str]:
    """Propagate ``known_status`` over the net with ``status_updater`` (forward, then backward)."""
    ssa, versions = get_ssa(predict_net)
    all_blobs = {blob for inputs, outputs in ssa for blob in inputs + outputs}
    allowed = all_blobs | {(b, 0) for b in predict_net.external_input}
    allowed |= {(b, versions[b]) for b in predict_net.external_output}
    unknown = sorted(k for k in known_status if k not in allowed)
    if unknown:
        raise ValueError(
            f"infer_device_type: known_status names blobs {unknown} that are not in net {predict_net.name!r}"
        )
    status = dict(known_status)

    def update(op: caffe2_pb2.OperatorDef, op_ssa: tuple[list[VersionedBlob], list[VersionedBlob]]) -> None:
        inputs, outputs = op_ssa
        new_in, new_out = status_updater(op, [status.get(b) for b in inputs], [status.get(b) for b in outputs])
        for blob, value in zip(inputs + outputs, new_in + new_out):
            if value is None:
                continue
            if status.get(blob, value) != value:
                raise RuntimeError(
                    f"Conflicting status for {blob}: existing status {status[blob]!r}, new status {value!r} "
                    f"(from op {op.type})"
                )
            status[blob] = value

    for op, op_ssa in zip(predict_net.op, ssa):
        update(op, op_ssa)
    for op, op_ssa in zip(reversed(predict_net.op), reversed(ssa)):
        update(op, op_ssa)

    missing = sorted(b for b in all_blobs if b not in status)
    if missing:
        raise NotImplementedError(
            f"Can not infer the status for {missing}. Currently only the case where a single forward and "
            "backward pass can identify the status of all blobs is supported."
        )
    return status


def infer_device_type(
    predict_net: caffe2_pb2.NetDef, known_status: dict[VersionedBlob, str], device_name_style: str = "caffe2"
) -> dict[VersionedBlob, str]:
    """Device of every versioned blob: "cpu" or "gpu" (``device_name_style="caffe2"``) / "cuda"
    ("pytorch"). Conflicts raise ``RuntimeError``, blobs left unknown ``NotImplementedError``."""
    if device_name_style not in ("caffe2", "pytorch"):
        raise ValueError(f"infer_device_type: device_name_style={device_name_style!r}, expected 'caffe2' or 'pytorch'")
    cpu, gpu = "cpu", ("gpu" if device_name_style == "caffe2" else "cuda")

    def copy_updater(source: str, target: str) -> StatusUpdater:
        def updater(op, input_types, output_types):
            if input_types[0] not in (None, source) or output_types[0] not in (None, target):
                raise RuntimeError(
                    f"Conflicting devices for {op.type} {list(op.input)} -> {list(op.output)}: inputs "
                    f"{input_types}, outputs {output_types}, expected {source} -> {target}"
                )
            return [source], [target]

        return updater

    def same_device_updater(op, input_types, output_types):
        known = [t for t in input_types + output_types if t is not None]
        if any(t != known[0] for t in known):
            raise RuntimeError(
                f"Conflicting devices for {op.type} {list(op.input)} -> {list(op.output)}: inputs "
                f"{input_types}, outputs {output_types}, expected one device"
            )
        device = known[0] if known else None
        return [device] * len(op.input), [device] * len(op.output)

    updaters = {"CopyCPUToGPU": copy_updater(cpu, gpu), "CopyGPUToCPU": copy_updater(gpu, cpu)}

    def device_updater(op, input_types, output_types):
        return updaters.get(op.type, same_device_updater)(op, input_types, output_types)

    return _generic_status_identifier(predict_net, device_updater, known_status)
