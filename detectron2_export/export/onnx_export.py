"""Trace a Caffe2-compatible model to ONNX with PyTorch's TorchScript-based exporter (SPEC 4.1).

Kept apart from the rest of the export so that a ``torch.export``-based path can replace it.
Upstream exported at PyTorch's default opset of the time (9); opset 11 is used here: PyTorch 2.x's
TorchScript exporter handles it well (dynamic ``Slice`` inputs, ``Resize``), while ``Softmax``,
``Squeeze``/``Unsqueeze``, ``Split`` and ``ReduceSum`` keep their pre-13 forms, which map onto
Caffe2 ops one to one.
"""

from __future__ import annotations

import io
import logging
import warnings

import onnx
import torch
from torch import nn

from ..errors import ExportError

logger = logging.getLogger(__name__)

ONNX_OPSET_VERSION = 11
"""Opset of the exported graphs; the ``_caffe2`` custom-op symbolics are registered for it."""


def _check_eval_mode(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if module.training:
            where = name or type(model).__name__
            raise ExportError(
                f"export_onnx_model: module {where!r} training=True, expected eval mode (call model.eval())"
            )


def export_onnx_model(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> onnx.ModelProto:
    """Export ``model``, called as ``model(inputs)``, to an ONNX model (custom ops as
    ``_caffe2``-domain nodes, ops without ONNX form as ``ATen`` nodes, constants folded)."""
    _check_eval_mode(model)
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter and its options are deprecated in favour of dynamo; they are what
        # upstream used, and this module is the one place to swap for a torch.export-based path
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # Expected TracerWarnings: c10.py's Python control flow on shapes and split sizes is traced
        # on purpose (the graph is for one image, checked before export), and the kernels of the
        # _caffe2 ops (raised from torch._ops) run inside the one node the tracer records for them
        warnings.filterwarnings(
            "ignore", category=torch.jit.TracerWarning, module=r"(detectron2_export\.export\.c10|torch\._ops)$"
        )
        torch.onnx.export(
            model,
            (inputs,),
            buffer,
            dynamo=False,
            operator_export_type=torch.onnx.OperatorExportTypes.ONNX_ATEN_FALLBACK,
            opset_version=ONNX_OPSET_VERSION,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    onnx_model = onnx.load_from_string(buffer.getvalue())
    n_nodes = len(onnx_model.graph.node)
    logger.info("Exported %s to ONNX (opset %d): %d nodes", type(model).__name__, ONNX_OPSET_VERSION, n_nodes)
    return onnx_model
