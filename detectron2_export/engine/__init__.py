"""detectron2's engine: the parts used for inference (``DefaultPredictor``)."""

from .defaults import DefaultPredictor

__all__ = ["DefaultPredictor"]
