"""int8 standard ONNX: onnxruntime's static quantization (QDQ format, per-channel symmetric int8
weights) of the network part of an ``export_onnx`` graph, calibrated by running the fp32 graph on
detectron2 inputs or on images of a registered dataset.

Only the learned layers are quantized: every Conv, ConvTranspose, Gemm and MatMul whose weight is an
initializer (backbone, FPN, RPN head, box/mask/keypoint heads), and the Relu right after one (which
onnxruntime then folds into the quantized convolution). Everything else (normalisation, anchors,
box decoding, NMS, RoiAlign, TopK, GridSample, rescaling) stays fp32: it holds coordinates and
scores, whose int8 rounding would move boxes and reorder detections.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import onnx

from ...errors import ExportError
from .io import INPUT_NAMES, batch_inputs

logger = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
WEIGHTED_OPS = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1}
"""Op types quantized when their weight (the input at this index) is an initializer."""
FOLLOWERS = {"Relu"}
"""Op types quantized with the weighted node that feeds them."""
DEFAULT_CALIBRATION_IMAGES = 16

Calibration = Union[str, Sequence[Dict[str, Any]]]


def check_quantize(quantize: Optional[str], calibration: Optional[Calibration]) -> str:
    """The precision ``quantize`` asks for ("fp32" for None); raise for an unknown one or int8
    without calibration inputs."""
    precision = "fp32" if quantize is None else quantize
    if precision not in PRECISIONS:
        raise ExportError(f"export_onnx: quantize={quantize!r}, expected None, 'fp32' or 'int8'")
    if precision == "int8":
        if calibration is not None and (isinstance(calibration, (bytes, dict)) or not isinstance(calibration, (str, Sequence))):
            raise ExportError(
                f"export_onnx: calibration of type {type(calibration).__name__}, expected a list of detectron2 "
                "input dicts or a registered dataset name"
            )
        if calibration is None or len(calibration) == 0:
            raise ExportError(
                f"export_onnx: quantize='int8' with calibration={calibration!r}, expected a non-empty list of "
                "detectron2 input dicts or a registered dataset name"
            )
    return precision


def calibration_inputs(calibration: Calibration, cfg: Any, num_images: int = DEFAULT_CALIBRATION_IMAGES) -> List[Dict[str, Any]]:
    """Detectron2 input dicts to calibrate with: ``calibration`` itself (a list of input dicts), or
    the first ``num_images`` images of the registered dataset of that name, read and resized as the
    model's test-time loader does (``DatasetMapper(cfg, is_train=False)``: INPUT.FORMAT,
    MIN_SIZE_TEST, MAX_SIZE_TEST)."""
    if not isinstance(calibration, str):
        inputs = list(calibration)
        for i, x in enumerate(inputs):
            if not isinstance(x, dict) or "image" not in x:
                raise ExportError(f"export_onnx: calibration[{i}] is a {type(x).__name__}, expected a dict with an 'image'")
        return inputs
    from ...config import CfgNode
    from ...data import DatasetCatalog
    from ...data.dataset_mapper import DatasetMapper

    if not isinstance(cfg, CfgNode):
        raise ExportError(
            f"export_onnx: calibration={calibration!r} (a dataset name) with cfg of type {type(cfg).__name__}, "
            "expected a CfgNode (its INPUT section resizes the images); pass a list of input dicts instead"
        )
    if num_images < 1:
        raise ExportError(f"export_onnx: calibration_images={num_images}, expected >= 1")
    records = DatasetCatalog.get(calibration)[:num_images]
    if not records:
        raise ExportError(f"export_onnx: calibration dataset {calibration!r} has no images, expected at least one")
    mapper = DatasetMapper(cfg, is_train=False)
    inputs = []
    for record in records:
        mapped = mapper(dict(record))
        inputs.append({"image": mapped["image"], "height": mapped["height"], "width": mapped["width"]})
    return inputs


class _Reader:
    """onnxruntime's ``CalibrationDataReader`` protocol over detectron2 inputs, one image per run
    (the images have different sizes)."""

    def __init__(self, inputs: Sequence[Dict[str, Any]]) -> None:
        self.inputs = inputs
        self.iterator: Iterator[Dict[str, np.ndarray]] = self._feeds()

    def _feeds(self) -> Iterator[Dict[str, np.ndarray]]:
        for x in self.inputs:
            feeds = batch_inputs([x])
            yield {name: feeds[name] for name in INPUT_NAMES}

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        return next(self.iterator, None)

    def rewind(self) -> None:
        self.iterator = self._feeds()

    def __len__(self) -> int:
        return len(self.inputs)


def nodes_to_quantize(model: onnx.ModelProto) -> List[str]:
    """Names of the network's nodes: weighted ops with an initializer weight, and their Relus."""
    initializers = {t.name for t in model.graph.initializer}
    weighted = set()
    names = []
    for node in model.graph.node:
        index = WEIGHTED_OPS.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] in initializers:
            weighted.update(node.output)
            names.append(node.name)
        elif node.op_type in FOLLOWERS and node.input and node.input[0] in weighted:
            names.append(node.name)
    unnamed = [n.op_type for n in model.graph.node if not n.name]
    if unnamed:
        raise ExportError(f"export_onnx: {len(unnamed)} unnamed nodes ({unnamed[:3]}...), expected every node named to select it")
    return names


def inline_shared_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` where every ``Identity`` of an initializer is replaced by its own copy of
    that initializer. The exporter shares equal initializers (e.g. the zero biases of several
    convolutions) through such Identity nodes; a convolution whose bias comes out of one is not
    fused into a quantized convolution by onnxruntime and stays fp32."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    initializers = {t.name: t for t in copy.graph.initializer}
    graph_outputs = {o.name for o in copy.graph.output}
    kept = []
    for node in copy.graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in graph_outputs:
            tensor = copy.graph.initializer.add()
            tensor.CopyFrom(initializers[node.input[0]])
            tensor.name = node.output[0]
        else:
            kept.append(node)
    del copy.graph.node[:]
    copy.graph.node.extend(kept)
    return copy


def has_vnni() -> bool:
    """Whether this x86 CPU has VNNI (8-bit dot products without the saturation of VPMADDUBSW)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantize_int8(model: onnx.ModelProto, inputs: Sequence[Dict[str, Any]]) -> onnx.ModelProto:
    """``model`` (an fp32 ``export_onnx`` graph) with its network in int8 QDQ, as onnxruntime
    recommends for x86 CPUs: uint8 activations, symmetric per-channel int8 weights, weights
    reduced to 7 bits on CPUs without VNNI (and not on ARM)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = inline_shared_initializers(model)
    selected = nodes_to_quantize(model)
    if not selected:
        raise ExportError("export_onnx: quantize='int8' found no Conv/Gemm/MatMul with an initializer weight to quantize")
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    reduce_range = x86 and not has_vnni()
    with tempfile.TemporaryDirectory() as directory:
        output = os.path.join(directory, "model_int8.onnx")
        try:
            quantize_static(
                model,
                output,
                _Reader(inputs),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=sorted(set(WEIGHTED_OPS) | FOLLOWERS),
                nodes_to_quantize=selected,
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=QuantType.QUInt8 if x86 else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "DedicatedQDQPair": True},
            )
        except Exception as e:  # onnxruntime.quantization raises plain Exceptions and ORT errors
            raise ExportError(f"export_onnx: onnxruntime static quantization failed: {e}") from e
        quantized = onnx.load(output)
    logger.info("Quantized %d nodes to int8 (QDQ), calibrated on %d images (reduce_range=%s)", len(selected), len(inputs), reduce_range)
    return quantized
