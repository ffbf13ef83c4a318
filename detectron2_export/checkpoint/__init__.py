"""Checkpoint loading as detectron2 does it: model-zoo .pkl, .pth, detectron2:// names."""

from .c2_model_loading import align_and_update_state_dicts
from .catalog import get_local_path
from .checkpointer import DetectionCheckpointer, IncompatibleKeys
from .formats import load_checkpoint_file

__all__ = [
    "DetectionCheckpointer",
    "IncompatibleKeys",
    "align_and_update_state_dicts",
    "get_local_path",
    "load_checkpoint_file",
]
