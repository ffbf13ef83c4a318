"""Dataset loaders and the builtin dataset registrations (made on import), as ``detectron2.data.datasets``."""

from . import builtin as _builtin  # noqa: F401  (registers shapes_val and the COCO names)
from .coco import load_coco_json, load_sem_seg, register_coco_instances
from .coco_panoptic import merge_to_panoptic, register_coco_panoptic_separated
from .paths import MissingDatasetFileError

__all__ = [
    "load_coco_json",
    "load_sem_seg",
    "register_coco_instances",
    "register_coco_panoptic_separated",
    "merge_to_panoptic",
    "MissingDatasetFileError",
]
