"""mmdetection (open-mmlab) backbones and detectors as detectron2 modules (detectron2.modeling.mmdet_wrapper).

Importable without mmdet: it is only needed to build a module from an mmdet config dict, and that
raises :class:`MMDetNotAvailableError` when mmdet (or mmcv) is missing. Modules that are already
built (``nn.Module`` arguments) need neither. Inference only: a training-mode detector raises.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import Detectron2ExportError
from ..layers import ShapeSpec
from ..structures import Boxes, ImageList, Instances
from ..utils.training_only import TrainingOnlyError
from .backbone import Backbone

__all__ = ["MMDetBackbone", "MMDetDetector", "MMDetNotAvailableError"]

logger = logging.getLogger(__name__)


class MMDetNotAvailableError(Detectron2ExportError, ImportError):
    """An mmdet config was given but mmdet / mmcv cannot be imported."""


def _build(builder: str, cfg: Mapping, where: str) -> nn.Module:
    """``mmdet.models.<builder>(cfg)``, the config turned into mmcv's ConfigDict as mmdet expects."""
    try:
        import mmdet.models
        from mmcv.utils import ConfigDict
    except ImportError as e:
        raise MMDetNotAvailableError(
            f"{where}: got an mmdet config ({dict(cfg).get('type', '?')!r}), which needs mmdet and mmcv "
            f"installed ({e}); pass an already built nn.Module instead"
        ) from e
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:
        pass
    return getattr(mmdet.models, builder)(ConfigDict(cfg))


class MMDetBackbone(Backbone):
    """An mmdet backbone (and optional neck) whose list of outputs becomes a dict of named features.

    Args:
        backbone: an mmdet backbone module, or its mmdet config dict.
        neck: an mmdet neck module or config (an ``nn.Sequential`` of necks works too), or None.
        output_shapes: the ShapeSpec of each output, in order.
        output_names: the names of the outputs; default ``out0``, ``out1``, ...
    """

    def __init__(
        self,
        backbone: nn.Module | Mapping,
        neck: nn.Module | Mapping | None = None,
        *,
        output_shapes: List[ShapeSpec],
        output_names: List[str] | None = None,
    ):
        super().__init__()
        if isinstance(backbone, Mapping):
            backbone = _build("build_backbone", backbone, "MMDetBackbone")
        self.backbone = backbone
        if isinstance(neck, Mapping):
            neck = _build("build_neck", neck, "MMDetBackbone")
        self.neck = neck
        # mmdet modules initialise their weights, and set their frozen stages, in these calls
        logger.info("Initializing mmdet backbone weights...")
        self.backbone.init_weights()
        self.backbone.train()
        if self.neck is not None:
            logger.info("Initializing mmdet neck weights ...")
            for module in self.neck if isinstance(self.neck, nn.Sequential) else [self.neck]:
                module.init_weights()
            self.neck.train()
        self._output_shapes = list(output_shapes)
        self._output_names = list(output_names) if output_names else [f"out{i}" for i in range(len(output_shapes))]
        if len(self._output_names) != len(self._output_shapes):
            raise ValueError(
                f"MMDetBackbone: output_names={self._output_names}, expected {len(self._output_shapes)} "
                "names (one per output_shapes)"
            )

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        outs = self.backbone(x)
        if self.neck is not None:
            outs = self.neck(outs)
        if not isinstance(outs, (list, tuple)):
            raise TypeError(f"MMDetBackbone: the mmdet backbone returned {type(outs).__name__}, expected a list/tuple")
        if len(outs) != len(self._output_shapes):
            raise ValueError(
                f"MMDetBackbone: the mmdet backbone returned {len(outs)} outputs, expected "
                f"{len(self._output_shapes)} (len(output_shapes))"
            )
        return dict(zip(self._output_names, outs))

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return dict(zip(self._output_names, self._output_shapes))


class MMDetDetector(nn.Module):
    """An mmdet detector taking detectron2's inputs and returning detectron2's outputs.

    Args:
        detector: an mmdet detector module (with ``simple_test``), or its mmdet config dict.
        size_divisibility: images are padded to a multiple of it.
        pixel_mean, pixel_std: per-channel normalization, applied before padding.
    """

    def __init__(
        self,
        detector: nn.Module | Mapping,
        *,
        size_divisibility: int = 32,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ):
        super().__init__()
        if isinstance(detector, Mapping):
            detector = _build("build_detector", detector, "MMDetDetector")
        self.detector = detector
        self.detector.init_weights()
        self.size_divisibility = size_divisibility
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        if self.pixel_mean.shape != self.pixel_std.shape:
            raise ValueError(
                f"MMDetDetector: pixel_mean has {self.pixel_mean.numel()} values and pixel_std "
                f"{self.pixel_std.numel()}, expected as many"
            )

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, Any]]) -> List[Dict[str, Instances]]:
        """detectron2's inputs (``image`` CHW, optional ``height`` / ``width`` of the output) ->
        ``[{"instances": Instances}]``, boxes in output pixels."""
        if self.training:
            raise TrainingOnlyError(
                "MMDetDetector in training mode: detectron2_export runs mmdet detectors for inference "
                "only; call .eval()"
            )
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(images, size_divisibility=self.size_divisibility).tensor
        rescale = {"height" in x for x in batched_inputs}
        if len(rescale) != 1:
            raise ValueError("MMDetDetector: some inputs have 'height'/'width' and some do not, expected all or none")
        rescale = rescale.pop()
        metas, output_shapes = [], []
        for x in batched_inputs:
            c, h, w = x["image"].shape
            meta: Dict[str, Any] = {"img_shape": (h, w, c), "ori_shape": (h, w, c), "flip": False}
            if rescale:
                meta["scale_factor"] = np.array([w / x["width"], h / x["height"]] * 2, dtype="float32")
                meta["ori_shape"] = (x["height"], x["width"], c)
                output_shapes.append((x["height"], x["width"]))
            else:
                meta["scale_factor"] = 1.0
                output_shapes.append((h, w))
            meta["pad_shape"] = (images.shape[-2], images.shape[-1], c)
            metas.append(meta)
        results = self.detector.simple_test(images, metas, rescale=rescale)
        return [{"instances": _convert_mmdet_result(r, shape)} for r, shape in zip(results, output_shapes)]


def _convert_mmdet_result(result: Any, shape: Tuple[int, int]) -> Instances:
    """mmdet's per-image result (per-class (n, 5) box arrays, optionally with per-class mask
    lists) -> Instances with pred_boxes, scores, pred_classes (int32) and pred_masks."""
    if isinstance(result, tuple):
        bbox_result, segm_result = result
        if isinstance(segm_result, tuple):  # (masks, mask scores)
            segm_result = segm_result[0]
    else:
        bbox_result, segm_result = result, None
    bboxes = torch.from_numpy(np.vstack(bbox_result))  # (N, 5): x1, y1, x2, y2, score
    labels = torch.cat([torch.full((len(b),), i, dtype=torch.int32) for i, b in enumerate(bbox_result)])
    inst = Instances(shape)
    inst.pred_boxes = Boxes(bboxes[:, :4])
    inst.scores = bboxes[:, -1]
    inst.pred_classes = labels
    if segm_result is not None and len(labels) > 0:
        masks = [torch.from_numpy(m) if isinstance(m, np.ndarray) else m for m in itertools.chain(*segm_result)]
        inst.pred_masks = torch.stack(masks, dim=0)
    return inst
