"""InferenceSampler: contiguous shards in rank order, every index exactly once, tails of one."""

from __future__ import annotations

import pytest

from detectron2_export.data import InferenceSampler, build_detection_test_loader
from detectron2_export.errors import DatasetError


def test_hand_computed_shards_of_10_over_4():
    # 10 = 3 + 3 + 2 + 2: the first 10 % 4 = 2 ranks take one more
    shards = [list(InferenceSampler(10, rank=r, world_size=4)) for r in range(4)]
    assert shards == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 200, 201])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_shards_concatenate_to_the_single_process_order(size, world_size):
    shards = [list(InferenceSampler(size, rank=r, world_size=world_size)) for r in range(world_size)]
    assert sum(shards, []) == list(range(size))  # each index once, in order
    lengths = [len(s) for s in shards]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)
    assert [len(InferenceSampler(size, rank=r, world_size=world_size)) for r in range(world_size)] == lengths


def test_defaults_to_this_process_world_of_one():
    assert list(InferenceSampler(5)) == [0, 1, 2, 3, 4]


def test_test_loader_uses_it_by_default():
    loader = build_detection_test_loader([{"i": i} for i in range(4)], mapper=None)
    assert isinstance(loader.sampler, InferenceSampler)
    assert [batch[0]["i"] for batch in loader] == [0, 1, 2, 3]


def test_rejects_empty_dataset_and_bad_rank():
    with pytest.raises(DatasetError, match=r"InferenceSampler: size=0, expected a dataset with at least one item"):
        InferenceSampler(0)
    with pytest.raises(ValueError, match=r"InferenceSampler: rank=2, expected 0..1"):
        InferenceSampler(5, rank=2, world_size=2)
