"""Place the ops of a GPU export: CUDA ``device_option`` on device copies and GPU ops (SPEC 4.4.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...caffe2.proto import caffe2_pb2
from ...errors import ExportError
from .infer_device_type import infer_device_type
from .ssa import OpSSA, VersionedBlob, get_ssa

_COPY_OPS = ("CopyCPUToGPU", "CopyGPUToCPU")


def _device_type(tensor: torch.Tensor) -> str:
    if tensor.device.type not in ("cpu", "cuda"):
        raise ExportError(f"assign_device_option: input device={tensor.device}, expected cpu or cuda")
    if tensor.device.type == "cuda" and tensor.device.index not in (None, 0):
        raise ExportError(f"assign_device_option: input device={tensor.device}, expected device index 0")
    return tensor.device.type


def _cuda_option() -> caffe2_pb2.DeviceOption:
    return caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)


def _assign_op_device_option(net: caffe2_pb2.NetDef, ssa: list[OpSSA], devices: dict[VersionedBlob, str]) -> None:
    for index, (op, (inputs, outputs)) in enumerate(zip(net.op, ssa)):
        if op.type in _COPY_OPS:
            op.device_option.CopyFrom(_cuda_option())
            continue
        op_devices = {devices[b] for b in inputs + outputs}
        if len(op_devices) > 1:
            raise ExportError(f"assign_device_option: op #{index} ({op.type}) mixes devices {sorted(op_devices)}")
        if op_devices == {"cuda"}:
            op.device_option.CopyFrom(_cuda_option())


def assign_device_option(
    predict_net: caffe2_pb2.NetDef, init_net: caffe2_pb2.NetDef, tensor_inputs: Sequence[torch.Tensor]
) -> None:
    """CUDA device options for ops whose blobs live on the GPU (inferred from the inputs' devices);
    CPU ops keep none. Init-net ops follow the predict-net inputs they fill."""
    input_devices = {(name, 0): _device_type(t) for name, t in zip(predict_net.external_input, tensor_inputs)}
    predict_devices = infer_device_type(predict_net, input_devices, device_name_style="pytorch")
    predict_ssa, _ = get_ssa(predict_net)
    _assign_op_device_option(predict_net, predict_ssa, predict_devices)

    init_ssa, init_versions = get_ssa(init_net)
    param_devices = {
        (name, init_versions[name]): predict_devices[(name, 0)]
        for name in init_net.external_output
        if (name, 0) in predict_devices
    }
    init_devices = infer_device_type(init_net, param_devices, device_name_style="pytorch")
    _assign_op_device_option(init_net, init_ssa, init_devices)
