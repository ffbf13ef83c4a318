"""``DefaultPredictor``: detectron2's one-image inference wrapper around a config.

It builds the model from the config, loads ``cfg.MODEL.WEIGHTS``, and for each call applies the
test-time resize (``ResizeShortestEdge`` to ``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``) and the
channel order of ``INPUT.FORMAT``, exactly as detectron2 does, so its outputs are the reference
the exported models are compared with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..checkpoint import DetectionCheckpointer
from ..config import CfgNode
from ..errors import ConfigError

__all__ = ["DefaultPredictor"]


class DefaultPredictor:
    """Run a config's model on one image: ``predictor(bgr_uint8_hwc_image) -> outputs dict``.

    Attributes:
        cfg: a clone of the config (the model may modify it).
        model: the model, in eval mode with the checkpoint loaded.
        metadata: the ``MetadataCatalog`` entry of ``DATASETS.TEST[0]``, if any.
        aug: the test-time ``ResizeShortestEdge``.
        input_format: "BGR" or "RGB", the channel order the model expects.
    """

    def __init__(self, cfg: CfgNode) -> None:
        from ..data import MetadataCatalog
        from ..data import transforms as T
        from ..modeling import build_model

        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        if len(cfg.DATASETS.TEST):
            self.metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0])
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ConfigError(f"DefaultPredictor: INPUT.FORMAT={self.input_format!r}, expected 'RGB' or 'BGR'")

    def __call__(self, original_image: np.ndarray) -> dict[str, Any]:
        """``original_image``: (H, W, C) uint8 in BGR order (as cv2.imread gives).

        Returns the model's outputs for that image, at the original resolution.
        """
        if not isinstance(original_image, np.ndarray) or original_image.ndim != 3:
            shape = getattr(original_image, "shape", None)
            raise ValueError(f"DefaultPredictor: image shape={shape}, expected a (H, W, C) numpy array")
        with torch.no_grad():
            if self.input_format == "RGB":
                original_image = original_image[:, :, ::-1]
            height, width = original_image.shape[:2]
            image = self.aug.get_transform(original_image).apply_image(original_image)
            image = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
            inputs = {"image": image, "height": height, "width": width}
            return self.model([inputs])[0]
