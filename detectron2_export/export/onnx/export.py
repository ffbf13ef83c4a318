"""``export_onnx``: trace a lowered model (``meta_arch.py``) to a standard-ONNX graph that stock
onnxruntime runs: default-domain operators only, no Loop/If, dynamic batch, height and width."""

from __future__ import annotations

import copy
import io
import json
import logging
import time
import warnings
from typing import Any, Dict, Optional, Sequence

import onnx
import torch
from torch import nn

from ...errors import ExportError
from .deconv import replace_strided_deconvs
from .io import INPUT_NAMES, batch_inputs, dynamic_axes
from .meta_arch import lower_model
from .ops.deform_conv import DEFORM_CONV_OPSET, has_deform_conv, register_deform_conv
from .quantize import DEFAULT_CALIBRATION_IMAGES, Calibration, calibration_inputs, check_quantize, quantize_int8

logger = logging.getLogger(__name__)

MIN_OPSET = 16
"""RoiAlign's ``coordinate_transformation_mode`` and GridSample arrived in opset 16."""

MAX_IR_VERSION = 10
"""The IR version written: onnxruntime 1.30 reads up to 13, onnx 1.23 would write 14; torch writes 8."""

METADATA_KEY = "detectron2_export"
"""``metadata_props`` key of the JSON that :class:`OnnxRuntimeModel` reads (meta-architecture,
output names, what the wrapper still does)."""

FORBIDDEN_OPS = {"Loop", "If", "Scan", "SequenceMap"}


def _metadata(model: nn.Module, lowered: nn.Module, cfg: Any, precision: str) -> Dict[str, Any]:
    meta: Dict[str, Any] = {
        "precision": precision,
        "meta_architecture": type(lowered).__name__,
        "model_class": type(model).__name__,
        "output_names": list(lowered.output_names),
        "paste_masks": bool(lowered.paste_masks),
        "input_format": getattr(model, "input_format", None) or _cfg_get(cfg, "INPUT", "FORMAT") or "BGR",
        "size_divisibility": lowered.size_divisibility,
        "batch_isolation": lowered.isolation is not None,
    }
    if hasattr(model, "combine_on"):
        meta["panoptic"] = {
            "combine_on": bool(model.combine_on),
            "overlap_threshold": float(model.combine_overlap_thresh),
            "stuff_area_thresh": float(model.combine_stuff_area_thresh),
            "instances_score_thresh": float(model.combine_instances_score_thresh),
        }
    return meta


def _cfg_get(cfg: Any, *keys: str) -> Optional[Any]:
    for key in keys:
        if cfg is None or not hasattr(cfg, key):
            return None
        cfg = getattr(cfg, key)
    return cfg


def check_standard(model: onnx.ModelProto, where: str = "export_onnx") -> None:
    """Raise unless every node is a default-domain operator and none is a Loop/If."""
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(f"{where}: node {node.name!r} ({node.op_type}) in domain {node.domain!r}, expected the default domain")
        if node.op_type in FORBIDDEN_OPS:
            raise ExportError(f"{where}: node {node.name!r} is a {node.op_type}, expected no control flow")


def required_opset(model: nn.Module) -> int:
    """The lowest opset ``export_onnx`` accepts for ``model``: 17, or 19 with deformable convolutions."""
    return DEFORM_CONV_OPSET if has_deform_conv(model) else 17


def export_onnx(
    cfg: Any,
    model: nn.Module,
    inputs: Sequence[Dict[str, torch.Tensor]],
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
    paste_masks: bool = False,
    quantize: Optional[str] = None,
    calibration: Optional[Calibration] = None,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
) -> onnx.ModelProto:
    """Export the whole inference of ``model`` as standard ONNX (see ``io.py`` for the graph's inputs).

    Args:
        cfg: the model's config (a CfgNode, a LazyConfig or None); only INPUT.FORMAT is read, as
            metadata, when the model does not carry it.
        model: a built detectron2 model (GeneralizedRCNN, RetinaNet, PanopticFPN, SemanticSegmentor
            or a subclass); a deep copy in eval mode is traced, the model itself is not changed.
        inputs: detectron2 inputs (list of {"image", "height", "width"}) to trace with.
        opset: ONNX opset, >= 16.
        dynamic_batch: the batch size is dynamic (else fixed to ``len(inputs)``). A graph of fixed
            batch 1 leaves out the batch isolation (``isolation.py``; 10% of the fp32 run time of
            R50-FPN at 800x1216, ``benchmarks/cpu_speed.py``): its ``images`` must then be the
            image itself, as :class:`OnnxRuntimeModel` gives it, not a larger canvas.
        paste_masks: masks pasted to the output image in the graph (bool (N, D, H, W)) instead of
            per-detection 28x28 probabilities.
        quantize: None (or "fp32"), or "int8": the backbone, FPN and heads quantized by onnxruntime's
            static quantization (see ``quantize.py``); post-processing stays fp32.
        calibration: for int8, the inputs the fp32 graph is calibrated on: a list of detectron2
            input dicts, or the name of a registered dataset (its first ``calibration_images``
            images, read and resized by the test-time ``DatasetMapper`` of ``cfg``).
    """
    precision = check_quantize(quantize, calibration)
    if opset < MIN_OPSET:
        raise ExportError(f"export_onnx: opset={opset}, expected >= {MIN_OPSET} (RoiAlign half_pixel, GridSample)")
    if has_deform_conv(model):
        if opset < DEFORM_CONV_OPSET:
            raise ExportError(
                f"export_onnx: opset={opset}, the model has deformable convolutions: expected opset >= "
                f"{DEFORM_CONV_OPSET} (ONNX DeformConv); pass opset={DEFORM_CONV_OPSET}"
            )
        register_deform_conv(opset)
    model = copy.deepcopy(model).eval()
    if precision == "int8":
        replace_strided_deconvs(model)
    feeds = batch_inputs(inputs)
    lowered = lower_model(model, paste_masks=paste_masks, isolate_batch=dynamic_batch or len(inputs) > 1)
    args = tuple(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)
    lowered.calibrate(args[0].shape[1])
    buffer = io.BytesIO()
    start = time.perf_counter()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            lowered,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=INPUT_NAMES,
            output_names=lowered.output_names,
            dynamic_axes=dynamic_axes(lowered.output_names, dynamic_batch),
            do_constant_folding=True,
        )
    onnx_model = onnx.load_from_string(buffer.getvalue())
    onnx_model.ir_version = min(onnx_model.ir_version, MAX_IR_VERSION)
    if precision == "int8":
        onnx_model = quantize_int8(onnx_model, calibration_inputs(calibration, cfg, calibration_images))
        onnx_model.ir_version = min(onnx_model.ir_version, MAX_IR_VERSION)
    onnx_model.producer_name = "detectron2_export"
    kept = [p for p in onnx_model.metadata_props if p.key != METADATA_KEY]
    del onnx_model.metadata_props[:]
    onnx_model.metadata_props.extend(kept)
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(_metadata(model, lowered, cfg, precision))
    check_standard(onnx_model)
    logger.info(
        "Exported %s to standard ONNX (%s, opset %d, %d nodes) in %.1f s",
        type(model).__name__, precision, opset, len(onnx_model.graph.node), time.perf_counter() - start,
    )
    return onnx_model
