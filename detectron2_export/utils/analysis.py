"""Model cost as ``detectron2.utils.analysis``: flops, activations and parameters on fvcore.

fvcore counts by tracing the model with ``torch.jit``; detectron2 models take ``list[dict]`` and
return ``Instances``, so they are wrapped in :class:`~detectron2_export.export.TracingAdapter`
first. A flop is one multiply-add (fvcore's convention). Element-wise and bookkeeping ops
(``_IGNORED_OPS``) are not counted and not warned about, as upstream. Counts of detection models
depend on the input (the heads run per proposal / detection): average over several inputs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import fvcore.nn
from fvcore.nn import activation_count, flop_count, parameter_count, parameter_count_table
from torch import nn

from ..errors import ExportError

__all__ = [
    "activation_count_operators",
    "flop_count_operators",
    "parameter_count_table",
    "parameter_count",
    "find_unused_parameters",
    "FlopCountAnalysis",
]

FLOPS_MODE = "flops"
ACTIVATIONS_MODE = "activations"

# upstream's list, plus aten::pad (what torch 2 traces for F.pad, constant_pad_nd before)
_IGNORED_OPS = {
    "aten::add",
    "aten::add_",
    "aten::argmax",
    "aten::argsort",
    "aten::batch_norm",
    "aten::constant_pad_nd",
    "aten::pad",
    "aten::div",
    "aten::div_",
    "aten::exp",
    "aten::log2",
    "aten::max_pool2d",
    "aten::meshgrid",
    "aten::mul",
    "aten::mul_",
    "aten::neg",
    "aten::nonzero_numpy",
    "aten::reciprocal",
    "aten::repeat_interleave",
    "aten::rsub",
    "aten::sigmoid",
    "aten::sigmoid_",
    "aten::softmax",
    "aten::sort",
    "aten::sqrt",
    "aten::sub",
    "torchvision::nms",
}


def _tracing_adapter(model: nn.Module, inputs: Any, **kwargs: Any) -> nn.Module:
    from ..export.flatten import TracingAdapter  # export imports modeling; keep utils importable alone

    return TracingAdapter(model, inputs, **kwargs)


class FlopCountAnalysis(fvcore.nn.FlopCountAnalysis):
    """fvcore's ``FlopCountAnalysis`` for detectron2 models (inputs need not be a tuple of tensors)."""

    def __init__(self, model: nn.Module, inputs: Any) -> None:
        wrapper = _tracing_adapter(model, inputs, allow_non_tensor=True)
        super().__init__(wrapper, wrapper.flattened_inputs)
        self.set_op_handle(**{k: None for k in _IGNORED_OPS})


def flop_count_operators(model: nn.Module, inputs: list[dict]) -> dict[str, float]:
    """GFlops per operator type (``{"conv": ..., "linear": ...}``) of ``model(inputs)`` in eval mode.

    ``inputs`` is detectron2's ``list[dict]``; the model's training mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        counts = FlopCountAnalysis(model, inputs).by_operator()
    finally:
        model.train(was_training)
    return {k: v / 1e9 for k, v in counts.items()}


def activation_count_operators(model: nn.Module, inputs: list[dict], **kwargs: Any) -> defaultdict[str, float]:
    """Activations (output elements, in millions) per operator type of ``model(inputs)``.

    Only ``inputs[0]["image"]`` is used (batch size 1); ``supported_ops`` (fvcore handles) adds or
    overrides counting rules.
    """
    return _wrapper_count_operators(model, inputs, ACTIVATIONS_MODE, **kwargs)


def _wrapper_count_operators(model: nn.Module, inputs: list[dict], mode: str, **kwargs: Any) -> defaultdict[str, float]:
    supported_ops = {k: lambda *args, **kw: {} for k in _IGNORED_OPS}
    supported_ops.update(kwargs.pop("supported_ops", {}))
    kwargs["supported_ops"] = supported_ops
    if len(inputs) != 1:
        raise ExportError(f"{mode} count: len(inputs)={len(inputs)}, expected 1 (batch size 1)")
    image = inputs[0]["image"]
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    was_training = model.training
    try:
        wrapper = _tracing_adapter(model, [{"image": image}])  # other keys dropped
        wrapper.eval()
        if mode == FLOPS_MODE:
            counts = flop_count(wrapper, (image,), **kwargs)
        elif mode == ACTIVATIONS_MODE:
            counts = activation_count(wrapper, (image,), **kwargs)
        else:
            raise NotImplementedError(f"Count for mode {mode} is not supported yet.")
    finally:
        model.train(was_training)
    return counts[0] if isinstance(counts, tuple) else counts  # (counts, unsupported ops)


def find_unused_parameters(model: nn.Module, inputs: Any) -> list[str]:
    """Names of the parameters that get no gradient from ``model(inputs)``'s loss.

    ``model`` is in training mode and returns a loss tensor or a dict of losses (summed);
    ``inputs`` is one argument or a tuple of arguments. Gradients are cleared before and after.
    """
    if not model.training:
        raise ExportError("find_unused_parameters: model.training=False, expected a model in training mode "
                          "that returns losses")
    for param in model.parameters():
        param.grad = None
    losses = model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    if isinstance(losses, dict):
        losses = sum(losses.values())
    losses.backward()
    unused = []
    for name, param in model.named_parameters():
        if param.grad is None:
            unused.append(name)
        param.grad = None
    return unused
