"""The graph passes applied after ONNX -> Caffe2 conversion, in upstream's order (SPEC 4.4).

Each pass keeps its upstream signature; ``PIPELINE`` gives every one an explicit slot by wrapping
it as a step on a shared ``PassState``. GPU-only steps run when any graph input is not on the CPU.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ...caffe2.proto import caffe2_pb2
from .assign_device_option import assign_device_option
from .construct_init_net_from_params import construct_init_net_from_params
from .fuse_alias_placeholder import fuse_alias_placeholder
from .fuse_copy_between_cpu_and_gpu import fuse_copy_between_cpu_and_gpu
from .get_params_from_init_net import get_params_from_init_net
from .group_norm_replace_aten_with_caffe2 import group_norm_replace_aten_with_caffe2
from .remove_dead_end_ops import remove_dead_end_ops
from .remove_reshape_for_fc import remove_reshape_for_fc

logger = logging.getLogger(__name__)


@dataclass
class PassState:
    """The nets being optimised and what earlier steps found out."""

    predict_net: caffe2_pb2.NetDef
    init_net: caffe2_pb2.NetDef
    tensor_inputs: Sequence[torch.Tensor]
    params: dict[str, Any] = field(default_factory=dict)
    device_options: dict[str, caffe2_pb2.DeviceOption] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineStep:
    name: str
    run: Callable[[PassState], None]
    gpu_only: bool = False


def _fuse_alias_placeholder(s: PassState) -> None:
    fuse_alias_placeholder(s.predict_net, s.init_net)


def _fuse_copy_between_cpu_and_gpu(s: PassState) -> None:
    fuse_copy_between_cpu_and_gpu(s.predict_net)


def _remove_dead_end_ops(s: PassState) -> None:
    remove_dead_end_ops(s.init_net)


def _assign_device_option(s: PassState) -> None:
    assign_device_option(s.predict_net, s.init_net, s.tensor_inputs)


def _get_params_from_init_net(s: PassState) -> None:
    s.params, s.device_options = get_params_from_init_net(s.init_net)


def _remove_reshape_for_fc(s: PassState) -> None:
    s.predict_net, s.params = remove_reshape_for_fc(s.predict_net, s.params)


def _construct_init_net_from_params(s: PassState) -> None:
    s.init_net = construct_init_net_from_params(s.params, s.device_options)


def _group_norm_replace_aten_with_caffe2(s: PassState) -> None:
    group_norm_replace_aten_with_caffe2(s.predict_net)


PIPELINE: tuple[PipelineStep, ...] = (
    PipelineStep("fuse_alias_placeholder", _fuse_alias_placeholder),
    PipelineStep("fuse_copy_between_cpu_and_gpu", _fuse_copy_between_cpu_and_gpu, gpu_only=True),
    PipelineStep("remove_dead_end_ops", _remove_dead_end_ops, gpu_only=True),
    PipelineStep("assign_device_option", _assign_device_option, gpu_only=True),
    PipelineStep("get_params_from_init_net", _get_params_from_init_net),
    PipelineStep("remove_reshape_for_fc", _remove_reshape_for_fc),
    PipelineStep("construct_init_net_from_params", _construct_init_net_from_params),
    PipelineStep("group_norm_replace_aten_with_caffe2", _group_norm_replace_aten_with_caffe2),
)


def op_stats(net_def: caffe2_pb2.NetDef) -> str:
    """``"{count:>4}x {type}"`` per op type, most frequent first, ties by name."""
    counts = Counter(op.type for op in net_def.op)
    return "\n".join(f"{n:>4}x {t}" for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def run_passes(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef,
    tensor_inputs: Sequence[torch.Tensor],
    inplace: bool = False,
) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """Apply ``PIPELINE`` to the converted nets; returns ``(predict_net, init_net)``.

    ``tensor_inputs`` are the graph's input tensors, in ``external_input`` order: their devices
    decide whether the GPU steps run and where ops are placed. The passes work on copies of the
    nets unless ``inplace`` (for a caller that drops them: copying an init net holding large
    weights costs seconds); the returned init net is a new one either way.
    """
    if not inplace:
        predict_net, init_net = copy.deepcopy(predict_net), copy.deepcopy(init_net)
    state = PassState(predict_net, init_net, tensor_inputs)
    on_gpu = any(t.device.type != "cpu" for t in tensor_inputs)
    for step in PIPELINE:
        if step.gpu_only and not on_gpu:
            continue
        logger.debug("Running pass %s", step.name)
        step.run(state)
    logger.info("Operators used in predict_net: \n%s", op_stats(state.predict_net))
    logger.info("Operators used in init_net: \n%s", op_stats(state.init_net))
    return state.predict_net, state.init_net
