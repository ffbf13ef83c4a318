"""detectron2's engine: the parts used for inference (``DefaultPredictor``, ``launch``)."""

from .defaults import DefaultPredictor
from .launch import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, launch

__all__ = ["DefaultPredictor", "launch", "DEFAULT_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT"]
