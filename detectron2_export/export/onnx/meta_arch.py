"""The lowered models: one ``nn.Module`` per meta-architecture that runs the model's own parts
(backbone, heads, layers) on batched tensors and does the rest (anchors, proposals, pooling,
post-processing) with the lowerings beside this file. Traced once, they give the standard-ONNX graph.

Graph inputs (see ``io.py``): ``images`` (N, C, H, W) raw pixels, ``image_sizes`` and ``output_sizes``
(N, 2) int64. Outputs: the names in ``output_names``, every one batched (N, ...).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ...errors import ExportError
from ...utils.registry import Registry
from .dense import dense_detections
from .isolation import CALIBRATION_SIZE, BatchIsolation, replicate_edges
from .masks import paste_masks
from .postprocess import rescale_detections
from .preprocess import normalize_and_pad, padded_sizes
from .proposals import rpn_proposals
from .roi_heads import roi_heads_lowering
from .semantic import resize_to_outputs

ONNX_LOWERING_REGISTRY = Registry("ONNX_LOWERING")
ONNX_LOWERING_REGISTRY.__doc__ = """Lowered (standard-ONNX) form of each meta-architecture, keyed by
the meta-architecture's class name; a subclass of a registered model uses its base's lowering."""

INSTANCE_OUTPUTS = ["pred_boxes", "scores", "pred_classes", "num_instances"]


def size_divisibility(backbone) -> int:
    """The padding multiple of a backbone, from ``size_divisibility`` and ``padding_constraints``."""
    constraints = getattr(backbone, "padding_constraints", None) or {}
    if constraints.get("square_size", 0) > 0:
        raise ExportError("export_onnx: backbones padded to a square (padding_constraints['square_size']) are not lowered")
    return int(constraints.get("size_divisibility", backbone.size_divisibility))


class LoweredModel(nn.Module):
    """Common part: normalisation and padding, backbone; subclasses add the heads."""

    def __init__(self, model: nn.Module, paste_masks: bool = False, isolate_batch: bool = True) -> None:
        super().__init__()
        self.model = model
        self.paste_masks = paste_masks
        self.size_divisibility = size_divisibility(model.backbone)
        dense_parts = [getattr(model, name, None) for name in ("backbone", "proposal_generator", "head", "sem_seg_head")]
        # a graph of batch 1 needs no isolation: its one image fills the batch (see io.py)
        self.isolation = BatchIsolation([m for m in dense_parts if isinstance(m, nn.Module)]) if isolate_batch else None

    def features(self, images: Tensor, image_sizes: Tensor) -> Dict[str, Tensor]:
        model = self.model
        x = normalize_and_pad(images, image_sizes, model.pixel_mean, model.pixel_std, self.size_divisibility)
        if self.isolation is None:
            return model.backbone(x)
        sizes = padded_sizes(image_sizes, self.size_divisibility)
        self.isolation.set_sizes(sizes, x)
        features = model.backbone(x)
        strides = {name: spec.stride for name, spec in model.backbone.output_shape().items()}
        return {name: replicate_edges(f, sizes, strides[name]) for name, f in features.items()}

    def instances(
        self, detections: Dict[str, Tensor], image_sizes: Tensor, output_sizes: Tensor
    ) -> Dict[str, Tensor]:
        """Rescaled detections and their per-detection outputs (masks pasted when asked)."""
        per_detection = {k: v for k, v in detections.items() if k not in ("pred_boxes", "scores")}
        boxes, scores, count, per_detection = rescale_detections(
            detections["pred_boxes"], detections["scores"], image_sizes, output_sizes, per_detection
        )
        outputs = {"pred_boxes": boxes, "scores": scores, "num_instances": count, **per_detection}
        if self.paste_masks and "pred_masks" in outputs:
            outputs["pred_masks"] = paste_masks(outputs["pred_masks"], boxes, output_sizes)
        return outputs

    @property
    def output_names(self) -> List[str]:
        """The graph's output names, in order (known before tracing: the exporter names them)."""
        return self.outputs()

    def outputs(self) -> List[str]:
        raise NotImplementedError

    def calibrate(self, channels: int) -> None:
        """Measure the strides of the batch-isolation hooks on one eager pass over a blank canvas."""
        if self.isolation is None:
            return
        size = CALIBRATION_SIZE
        canvas = self.model.pixel_mean.expand(channels, size, size)[None].to(torch.float32)
        sizes = torch.tensor([[size, size]])
        with torch.no_grad(), self.isolation.calibrating():
            self(canvas, sizes, sizes)

    def instance_outputs(self, roi_heads=None) -> List[str]:
        names = list(INSTANCE_OUTPUTS)
        if roi_heads is not None and roi_heads.mask_on:
            names.append("pred_masks")
        if roi_heads is not None and roi_heads.keypoint_on:
            names += ["heatmap_boxes", "pred_keypoint_heatmaps"]
        return names

    def ordered(self, outputs: Dict[str, Tensor]) -> Tuple[Tensor, ...]:
        if set(outputs) != set(self.output_names):
            raise ExportError(f"export_onnx: outputs {sorted(outputs)}, expected {sorted(self.output_names)}")
        return tuple(outputs[k] for k in self.output_names)


@ONNX_LOWERING_REGISTRY.register()
class GeneralizedRCNN(LoweredModel):
    """Faster / Mask / Keypoint R-CNN: RPN, then the ROI heads on the proposals."""

    def __init__(self, model: nn.Module, paste_masks: bool = False, isolate_batch: bool = True) -> None:
        super().__init__(model, paste_masks, isolate_batch)
        if model.proposal_generator is None:
            raise ExportError("export_onnx: GeneralizedRCNN without a proposal generator (precomputed proposals) is not lowered")
        self.roi_heads = roi_heads_lowering(model.roi_heads)

    def outputs(self) -> List[str]:
        return self.instance_outputs(self.roi_heads)

    def detect(self, features: Dict[str, Tensor], image_sizes: Tensor) -> Dict[str, Tensor]:
        rpn = self.model.proposal_generator
        proposals, valid = rpn_proposals(
            rpn, [features[f] for f in rpn.in_features], image_sizes, padded_sizes(image_sizes, self.size_divisibility)
        )
        return self.roi_heads.detect(features, proposals, valid, image_sizes)

    def forward(self, images: Tensor, image_sizes: Tensor, output_sizes: Tensor) -> Tuple[Tensor, ...]:
        features = self.features(images, image_sizes)
        return self.ordered(self.instances(self.detect(features, image_sizes), image_sizes, output_sizes))


@ONNX_LOWERING_REGISTRY.register()
class PanopticFPN(GeneralizedRCNN):
    """Instances and semantic logits; the panoptic combination runs in :class:`OnnxRuntimeModel`."""

    def outputs(self) -> List[str]:
        return super().outputs() + ["sem_seg"]

    def forward(self, images: Tensor, image_sizes: Tensor, output_sizes: Tensor) -> Tuple[Tensor, ...]:
        features = self.features(images, image_sizes)
        outputs = self.instances(self.detect(features, image_sizes), image_sizes, output_sizes)
        sem_seg, _ = self.model.sem_seg_head(features, None)
        outputs["sem_seg"] = resize_to_outputs(sem_seg, image_sizes, output_sizes)
        return self.ordered(outputs)


@ONNX_LOWERING_REGISTRY.register()
class SemanticSegmentor(LoweredModel):
    """Semantic logits at the output sizes."""

    def outputs(self) -> List[str]:
        return ["sem_seg"]

    def forward(self, images: Tensor, image_sizes: Tensor, output_sizes: Tensor) -> Tuple[Tensor, ...]:
        sem_seg, _ = self.model.sem_seg_head(self.features(images, image_sizes), None)
        return self.ordered({"sem_seg": resize_to_outputs(sem_seg, image_sizes, output_sizes)})


@ONNX_LOWERING_REGISTRY.register()
class RetinaNet(LoweredModel):
    """Dense detections: per-level candidates, NMS per class, top detections (FCOS alike)."""

    def outputs(self) -> List[str]:
        return self.instance_outputs()

    def forward(self, images: Tensor, image_sizes: Tensor, output_sizes: Tensor) -> Tuple[Tensor, ...]:
        model = self.model
        features = self.features(images, image_sizes)
        features = [features[f] for f in model.head_in_features]
        boxes, scores, classes = dense_detections(model, features, padded_sizes(image_sizes, self.size_divisibility))
        detections = {"pred_boxes": boxes, "scores": scores, "pred_classes": classes}
        return self.ordered(self.instances(detections, image_sizes, output_sizes))


ONNX_LOWERING_REGISTRY.register(RetinaNet, name="FCOS")


def lower_model(model: nn.Module, paste_masks: bool = False, isolate_batch: bool = True) -> LoweredModel:
    """The lowered form of ``model``, by its class or the nearest registered base class;
    ``isolate_batch=False`` (for graphs of batch 1) leaves out the batch-isolation hooks."""
    for cls in type(model).__mro__:
        if cls.__name__ in ONNX_LOWERING_REGISTRY and cls.__module__.startswith("detectron2_export.modeling"):
            return ONNX_LOWERING_REGISTRY.get(cls.__name__)(model, paste_masks, isolate_batch)
    raise ExportError(
        f"export_onnx: meta-architecture {type(model).__name__} has no standard-ONNX lowering; "
        f"lowered: {', '.join(sorted(name for name, _ in ONNX_LOWERING_REGISTRY))}"
    )
