"""The Caffe2 export pipeline: trace to ONNX, convert to NetDefs, run the graph passes (SPEC 4)."""

from __future__ import annotations

import copy
import logging

import torch

from ..errors import ExportAssertionError
from .onnx_export import export_onnx_model
from .onnx_to_caffe2.converter import onnx_graph_to_caffe2_net
from .passes import run_passes

logger = logging.getLogger(__name__)


def export_caffe2_detection_model(model: torch.nn.Module, tensor_inputs: tuple[torch.Tensor, ...]):
    """Export a Caffe2-compatible meta-architecture to ``(predict_net, init_net)``.

    ``model`` must have ``encode_additional_info(predict_net, init_net)``; it is deep-copied first.
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "encode_additional_info"):
        raise ExportAssertionError(
            f"export_caffe2_detection_model: got a {type(model).__name__}, expected a Caffe2-compatible "
            "meta-architecture (an nn.Module with encode_additional_info, e.g. from Caffe2Tracer)"
        )
    model = copy.deepcopy(model)

    logger.info("Exporting a %s model via ONNX ...", type(model).__name__)
    onnx_model = export_onnx_model(model, tensor_inputs)
    init_net, predict_net = onnx_graph_to_caffe2_net(onnx_model)  # logs the op table
    del onnx_model  # a second copy of every weight

    predict_net, init_net = run_passes(predict_net, init_net, tensor_inputs, inplace=True)
    model.encode_additional_info(predict_net, init_net)
    return predict_net, init_net
