"""Datasets, metadata and the test-time input pipeline, as ``detectron2.data``.

Importing this package registers the builtin datasets (``shapes_val``, ``coco_2017_val``, ...).
"""

from . import transforms  # noqa: F401
from .build import build_detection_test_loader, get_detection_dataset_dicts, trivial_batch_collator
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import InferenceSampler
from . import datasets  # noqa: F401  (registers the builtin datasets)

__all__ = [
    "DatasetCatalog",
    "MetadataCatalog",
    "Metadata",
    "DatasetFromList",
    "MapDataset",
    "DatasetMapper",
    "InferenceSampler",
    "build_detection_test_loader",
    "get_detection_dataset_dicts",
    "trivial_batch_collator",
]
