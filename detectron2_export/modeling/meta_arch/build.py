"""The meta-architecture registry and ``build_model`` (detectron2.modeling.meta_arch.build)."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ...utils.registry import Registry

__all__ = ["META_ARCH_REGISTRY", "build_model"]

logger = logging.getLogger(__name__)

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = """
Registry for meta-architectures, i.e. the whole model.

A registered object is called as ``obj(cfg)`` and must return an ``nn.Module``.
"""


def build_model(cfg) -> nn.Module:
    """Build the model named by ``cfg.MODEL.META_ARCHITECTURE`` on ``cfg.MODEL.DEVICE``.

    Weights are freshly initialised; load a checkpoint to get a trained model.
    """
    meta_arch = cfg.MODEL.META_ARCHITECTURE
    model = META_ARCH_REGISTRY.get(meta_arch)(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    logger.info("Built model %s on %s", meta_arch, cfg.MODEL.DEVICE)
    return model
