"""utils.comm: a world of one without torch.distributed, and a 2-machine x 2-worker gloo job on this host
(two launchers in threads) checked against the rank layout computed by hand."""

from __future__ import annotations

import pytest

from detectron2_export.utils import comm

from ..engine.test_launch import launch_two_machines


def layout_and_collectives() -> dict:
    """Run on every rank; rank 0's dict comes back to machine 0's launcher."""
    rank = comm.get_rank()
    mine = {"rank": rank, "local_rank": comm.get_local_rank(), "local_size": comm.get_local_size()}
    return {
        "world_size": comm.get_world_size(),
        "is_main": comm.is_main_process(),
        "all_gather": comm.all_gather(mine),
        "gather": comm.gather(rank * rank),
        "gather_on_1": comm.all_gather(comm.gather(rank, dst=1)),
        "broadcast": comm.all_gather(comm.broadcast_object({"from": rank}, src=2)),
    }


def test_world_of_one():
    assert (comm.get_world_size(), comm.get_rank(), comm.get_local_rank(), comm.get_local_size()) == (1, 0, 0, 1)
    assert comm.is_main_process()
    comm.synchronize()  # a no-op, not a hang
    assert comm.all_gather({"a": 1}) == [{"a": 1}]
    assert comm.gather(5) == [5]
    assert comm.broadcast_object("x") == "x"


@pytest.mark.slow  # spawns 4 workers
def test_two_machines_of_two_workers():
    results = [f.result(timeout=0) for f in launch_two_machines(layout_and_collectives, 2)]
    assert results[1] is None  # machine 1's launcher gets no result
    r = results[0]
    assert r["world_size"] == 4 and r["is_main"]
    # ranks m * 2 + l: machine 0 holds ranks 0, 1; machine 1 holds ranks 2, 3
    assert r["all_gather"] == [
        {"rank": 0, "local_rank": 0, "local_size": 2},
        {"rank": 1, "local_rank": 1, "local_size": 2},
        {"rank": 2, "local_rank": 0, "local_size": 2},
        {"rank": 3, "local_rank": 1, "local_size": 2},
    ]
    assert r["gather"] == [0, 1, 4, 9]
    assert r["gather_on_1"] == [[], [0, 1, 2, 3], [], []]  # only the destination receives
    assert r["broadcast"] == [{"from": 2}] * 4
