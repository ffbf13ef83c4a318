"""Dataset dicts from the catalog and the test data loader, as ``detectron2.data.build``."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from typing import Any, Callable, Sequence

import torch.utils.data as torchdata

from detectron2_export.config.configurable import configurable
from detectron2_export.errors import DatasetError

from .catalog import DatasetCatalog, MetadataCatalog
from .common import DatasetFromList, MapDataset
from .dataset_mapper import DatasetMapper
from .samplers import InferenceSampler
from ..utils.training_only import training_only_function

__all__ = [
    "get_detection_dataset_dicts",
    "build_detection_test_loader",
    "trivial_batch_collator",
    "print_instances_class_histogram",
    "build_detection_train_loader",
    "build_batch_data_loader",
    "load_proposals_into_dataset",
]

# the training loader of detectron2.data.build: importable, TrainingOnlyError when called
build_detection_train_loader = training_only_function(__name__, "build_detection_train_loader")
build_batch_data_loader = training_only_function(__name__, "build_batch_data_loader")
load_proposals_into_dataset = training_only_function(__name__, "load_proposals_into_dataset")

logger = logging.getLogger(__name__)


def _check_metadata_consistency(key: str, dataset_names: Sequence[str]) -> None:
    """Datasets used together must agree on e.g. thing_classes."""
    values = [MetadataCatalog.get(name).get(key) for name in dataset_names]
    for name, value in zip(dataset_names[1:], values[1:]):
        if value != values[0]:
            raise DatasetError(
                f"Metadata of {name!r}: {key}={value!r}, expected {values[0]!r} as in {dataset_names[0]!r}"
            )


def print_instances_class_histogram(dataset_dicts: list[dict], class_names: Sequence[str]) -> None:
    """Log how many (non-crowd) instances of each class the dataset has, as detectron2 does."""
    counts = Counter(
        ann["category_id"] for d in dataset_dicts for ann in d.get("annotations", ()) if not ann.get("iscrowd", 0)
    )
    table = ", ".join(f"{name}: {counts.get(i, 0)}" for i, name in enumerate(class_names))
    logger.info("Distribution of instances among all %d categories: %s (total %d)",
                len(class_names), table, sum(counts.values()))


def get_detection_dataset_dicts(
    names: str | Sequence[str],
    filter_empty: bool = True,
    min_keypoints: int = 0,
    proposal_files: Sequence[str] | None = None,
    check_consistency: bool = True,
) -> list[dict]:
    """Load and concatenate registered datasets.

    filter_empty: drop images whose annotations are all crowd (or absent), as upstream does for
    training; test loaders pass False. min_keypoints: drop images with fewer visible keypoints.
    proposal_files (precomputed proposals, for Fast R-CNN training) are not supported.
    """
    if proposal_files is not None:
        raise NotImplementedError(
            f"get_detection_dataset_dicts: proposal_files={proposal_files!r}, expected None "
            "(precomputed proposals are not supported)"
        )
    if isinstance(names, str):
        names = [names]
    if not len(names):
        raise DatasetError("get_detection_dataset_dicts: names=[], expected at least one dataset name")
    dataset_dicts = [DatasetCatalog.get(name) for name in names]
    for name, dicts in zip(names, dataset_dicts):
        if not len(dicts):
            raise DatasetError(f"Dataset {name!r} is empty!")
    dicts = list(itertools.chain.from_iterable(dataset_dicts))

    has_instances = "annotations" in dicts[0]
    if filter_empty and has_instances:
        dicts = [d for d in dicts if any(ann.get("iscrowd", 0) == 0 for ann in d["annotations"])]
    if min_keypoints > 0 and has_instances:
        dicts = [d for d in dicts if _visible_keypoints(d) >= min_keypoints]
    if check_consistency and has_instances:
        class_names = MetadataCatalog.get(names[0]).get("thing_classes")
        if class_names is not None:
            _check_metadata_consistency("thing_classes", names)
            print_instances_class_histogram(dicts, class_names)
    if not dicts:
        raise DatasetError(f"No valid data found in {','.join(names)}.")
    return dicts


def _visible_keypoints(dataset_dict: dict) -> int:
    return sum(
        sum(1 for v in ann["keypoints"][2::3] if v > 0)
        for ann in dataset_dict["annotations"]
        if "keypoints" in ann
    )


def trivial_batch_collator(batch: list) -> list:
    """A batch is the list of mapped dicts, unchanged."""
    return batch


def _test_loader_from_config(cfg: Any, dataset_name: str | Sequence[str], mapper: Callable | None = None) -> dict:
    if isinstance(dataset_name, str):
        dataset_name = [dataset_name]
    dataset = get_detection_dataset_dicts(dataset_name, filter_empty=False)
    return {
        "dataset": dataset,
        "mapper": mapper if mapper is not None else DatasetMapper(cfg, False),
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
    }


@configurable(from_config=_test_loader_from_config)
def build_detection_test_loader(
    dataset: list | torchdata.Dataset,
    *,
    mapper: Callable[[dict], Any] | None,
    sampler: torchdata.Sampler | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    collate_fn: Callable[[list], Any] | None = None,
) -> torchdata.DataLoader:
    """Iterate the dataset in order, mapped, in batches of ``batch_size`` (a list of dicts each).

    Called either as ``build_detection_test_loader(cfg, dataset_name, mapper=None)`` or with
    explicit arguments (``dataset`` a list of dicts or a Dataset). The default ``sampler`` is
    ``InferenceSampler``: under torch.distributed each rank iterates its contiguous shard.
    """
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    if mapper is not None:
        dataset = MapDataset(dataset, mapper)
    if sampler is None:
        sampler = InferenceSampler(len(dataset))
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        num_workers=num_workers,
        collate_fn=trivial_batch_collator if collate_fn is None else collate_fn,
    )
