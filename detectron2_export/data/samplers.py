"""Samplers of the test loader, as ``detectron2.data.samplers``."""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import BatchSampler, Sampler

from ..errors import DatasetError
from ..utils import comm
from ..utils.training_only import training_only_class

__all__ = [
    "GroupedBatchSampler",
    "TrainingSampler",
    "RandomSubsetTrainingSampler",
    "InferenceSampler",
    "RepeatFactorTrainingSampler",
]

# The training loader's samplers: importable, TrainingOnlyError when built.
TrainingSampler = training_only_class(__name__, "TrainingSampler", Sampler)
RandomSubsetTrainingSampler = training_only_class(__name__, "RandomSubsetTrainingSampler", Sampler)
RepeatFactorTrainingSampler = training_only_class(__name__, "RepeatFactorTrainingSampler", Sampler)
GroupedBatchSampler = training_only_class(__name__, "GroupedBatchSampler", BatchSampler)


class InferenceSampler(Sampler[int]):
    """This rank's contiguous shard of ``range(size)``: shards follow rank order, cover every index
    exactly once, and differ in length by at most one (the first ``size % world_size`` ranks take
    one more). Concatenating the shards in rank order gives the single-process order, so gathered
    results are the same list a single process produces.
    """

    def __init__(self, size: int, *, rank: int | None = None, world_size: int | None = None):
        """``rank`` / ``world_size`` default to this process's (``utils.comm``)."""
        if size <= 0:
            raise DatasetError(f"InferenceSampler: size={size}, expected a dataset with at least one item")
        self._size = size
        self._rank = comm.get_rank() if rank is None else rank
        self._world_size = comm.get_world_size() if world_size is None else world_size
        if not 0 <= self._rank < self._world_size:
            raise ValueError(f"InferenceSampler: rank={self._rank}, expected 0..{self._world_size - 1}")
        self._local_indices = self._get_local_indices(size, self._world_size, self._rank)

    @staticmethod
    def _get_local_indices(total_size: int, world_size: int, rank: int) -> range:
        shard, extra = divmod(total_size, world_size)
        begin = rank * shard + min(rank, extra)
        return range(begin, begin + shard + int(rank < extra))

    def __iter__(self) -> Iterator[int]:
        return iter(self._local_indices)

    def __len__(self) -> int:
        return len(self._local_indices)
