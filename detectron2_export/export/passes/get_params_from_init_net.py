"""Run the init net once and collect its outputs as parameters (SPEC 4.4.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ...caffe2.proto import caffe2_pb2
from ...caffe2.workspace import Workspace
from .ssa import get_producer_map, get_ssa


def _device_option(producer: caffe2_pb2.OperatorDef) -> caffe2_pb2.DeviceOption:
    # CopyGPUToCPU is a CUDA op whose output lives on the CPU
    if producer.type == "CopyGPUToCPU":
        return caffe2_pb2.DeviceOption()
    return producer.device_option


def _fetch_all(ws: Workspace, names: Iterable[str]) -> dict[str, Any]:
    """``{name: ws.FetchBlob(name)}`` without FetchBlob's copy of every weight (the scratch workspace
    is dropped right after); a tensor whose memory was already handed out is still copied."""
    fetched: dict[str, Any] = {}
    handed_out: set[int] = set()
    for name in names:
        blob = ws.fetch_tensor(name)
        if not isinstance(blob, torch.Tensor):
            fetched[name] = ws.FetchBlob(name)
            continue
        array = blob.detach().cpu().numpy()
        storage = blob.untyped_storage().data_ptr()
        fetched[name] = array.copy() if storage in handed_out else array
        handed_out.add(storage)
    return fetched


def get_params_from_init_net(
    init_net: caffe2_pb2.NetDef,
) -> tuple[dict[str, Any], dict[str, caffe2_pb2.DeviceOption]]:
    """``(params, device_options)``: every external output of ``init_net`` as a numpy array (as
    fetched), and the device option of the op that produced its final version."""
    ws = Workspace("__get_params_from_init_net__")
    ws.RunNetOnce(init_net)
    params = _fetch_all(ws, init_net.external_output)
    ssa, versions = get_ssa(init_net)
    producers = get_producer_map(ssa)
    device_options = {
        name: _device_option(init_net.op[producers[(name, versions[name])][0]]) for name in init_net.external_output
    }
    return params, device_options
