"""Datasets, metadata and the test-time input pipeline, as ``detectron2.data``.

Importing this package registers the builtin datasets (``shapes_val``, ``coco_2017_val``, ...).
"""

from . import transforms  # noqa: F401
from .build import (
    build_batch_data_loader,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
    load_proposals_into_dataset,
    print_instances_class_histogram,
    trivial_batch_collator,
)
from .catalog import DatasetCatalog, Metadata, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import InferenceSampler
from . import datasets, detection_utils, samplers  # noqa: F401  (datasets registers the builtin ones)

__all__ = [
    "DatasetCatalog",
    "MetadataCatalog",
    "Metadata",
    "DatasetFromList",
    "MapDataset",
    "DatasetMapper",
    "InferenceSampler",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "build_batch_data_loader",
    "load_proposals_into_dataset",
    "get_detection_dataset_dicts",
    "print_instances_class_histogram",
    "trivial_batch_collator",
]
