"""Map-style datasets over a list of dicts, as ``detectron2.data.common``."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch.utils.data as torchdata

__all__ = ["DatasetFromList", "MapDataset"]


class DatasetFromList(torchdata.Dataset):
    """A list as a Dataset; with ``copy=True`` each item is deep-copied so mappers may mutate it."""

    def __init__(self, lst: list, copy: bool = True):
        self._lst = lst
        self._copy = copy

    def __len__(self) -> int:
        return len(self._lst)

    def __getitem__(self, idx: int) -> Any:
        return copy.deepcopy(self._lst[idx]) if self._copy else self._lst[idx]


class MapDataset(torchdata.Dataset):
    """Apply ``map_func`` to each item (inference: the mapper never returns None)."""

    def __init__(self, dataset: torchdata.Dataset, map_func: Callable[[Any], Any]):
        self._dataset = dataset
        self._map_func = map_func

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> Any:
        item = self._map_func(self._dataset[idx])
        if item is None:
            raise ValueError(f"MapDataset: mapper returned None for item {idx}, expected a dict")
        return item
