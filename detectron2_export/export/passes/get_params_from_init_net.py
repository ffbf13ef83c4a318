"""Run the init net once and collect its outputs as parameters (SPEC 4.4.3)."""

from __future__ import annotations

from typing import Any

from ...caffe2.proto import caffe2_pb2
from ...caffe2.workspace import Workspace
from .ssa import get_producer_map, get_ssa


def _device_option(producer: caffe2_pb2.OperatorDef) -> caffe2_pb2.DeviceOption:
    # CopyGPUToCPU is a CUDA op whose output lives on the CPU
    if producer.type == "CopyGPUToCPU":
        return caffe2_pb2.DeviceOption()
    return producer.device_option


def get_params_from_init_net(
    init_net: caffe2_pb2.NetDef,
) -> tuple[dict[str, Any], dict[str, caffe2_pb2.DeviceOption]]:
    """``(params, device_options)``: every external output of ``init_net`` as a numpy array (as
    fetched), and the device option of the op that produced its final version."""
    ws = Workspace("__get_params_from_init_net__")
    ws.RunNetOnce(init_net)
    params = {name: ws.FetchBlob(name) for name in init_net.external_output}
    ssa, versions = get_ssa(init_net)
    producers = get_producer_map(ssa)
    device_options = {
        name: _device_option(init_net.op[producers[(name, versions[name])][0]]) for name in init_net.external_output
    }
    return params, device_options
