"""engine.launch: results and thread counts of spawned CPU workers, and every failure named by rank.

Workers are real spawned processes on gloo; two "machines" are two launchers on this host, run in
threads of the test process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import timedelta

import pytest
import torch

from detectron2_export.engine import launch
from detectron2_export.errors import DistributedError
from detectron2_export.utils import comm

SHORT = timedelta(seconds=2)


def free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def launch_two_machines(main_func, workers_per_machine: int) -> list[Future]:
    """Two launchers (machine 0 and 1) of ``main_func`` on this host, in threads; their finished futures."""
    url = free_url()
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(launch, main_func, workers_per_machine, 2, machine, url, (), timedelta(seconds=60), device="cpu")
            for machine in (0, 1)
        ]
        wait(futures, timeout=180)
    return futures


# ---------------------------------------------------------------- worker functions (imported by the workers)
def rank_and_threads(offset: int) -> tuple[int, int, list]:
    """Rank 0 returns its rank + offset, the thread count and every rank's (rank, world size)."""
    return comm.get_rank() + offset, torch.get_num_threads(), comm.all_gather((comm.get_rank(), comm.get_world_size()))


def raise_on_rank_1() -> None:
    if comm.get_rank() == 1:
        raise ValueError("bad shard on rank 1")
    comm.synchronize()


def kill_rank_1() -> None:
    if comm.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    comm.synchronize()


# ---------------------------------------------------------------------------------------------- results
def test_world_of_one_runs_here():
    assert launch(lambda x: (x, os.getpid()), 1, args=(3,), device="cpu") == (3, os.getpid())


@pytest.mark.slow  # spawns workers (a few seconds each)
def test_two_workers_return_rank_0_result_with_their_thread_count():
    result = launch(rank_and_threads, 2, args=(10,), device="cpu", threads_per_worker=1)
    assert result == (10, 1, [(0, 2), (1, 2)])


# --------------------------------------------------------------------------------------------- failures
@pytest.mark.slow  # spawns workers (a few seconds each)
def test_worker_that_raises_is_named_with_its_error():
    with pytest.raises(DistributedError) as e:
        launch(raise_on_rank_1, 2, device="cpu")
    assert re.fullmatch(
        r"worker rank 1 \(machine 0, local rank 1, pid \d+\) failed: ValueError: bad shard on rank 1", str(e.value)
    )


@pytest.mark.slow  # spawns workers (a few seconds each)
def test_worker_that_dies_is_named_with_its_signal():
    with pytest.raises(DistributedError, match=r"^worker rank 1 \(machine 0, local rank 1, pid \d+\) was killed by signal SIGKILL$"):
        launch(kill_rank_1, 2, device="cpu")


@pytest.mark.slow  # spawns workers (a few seconds each)
def test_failure_on_one_machine_ends_both_naming_the_rank():
    errors = [f.exception(timeout=0) for f in launch_two_machines(raise_on_rank_1, 1)]
    cause = "worker rank 1 (machine 1, local rank 0, pid "
    assert all(isinstance(e, DistributedError) for e in errors), errors
    assert str(errors[1]).startswith(cause) and "failed: ValueError: bad shard on rank 1" in str(errors[1])
    assert str(errors[0]).startswith(cause)  # machine 0 reports machine 1's failure first, not its own echo


def test_machine_that_does_not_join_is_named():
    url = free_url()
    with pytest.raises(DistributedError) as e:
        launch(rank_and_threads, 2, num_machines=2, machine_rank=0, dist_url=url, device="cpu", connect_timeout=SHORT)
    assert str(e.value).startswith(f"machine 1 (ranks 2-3) did not join {url} within 2 s")


def test_machine_that_cannot_reach_machine_0_is_named():
    url = free_url()  # nobody listens there
    with pytest.raises(DistributedError) as e:
        launch(rank_and_threads, 1, num_machines=2, machine_rank=1, dist_url=url, device="cpu", connect_timeout=SHORT)
    assert str(e.value).startswith(f"machine 1 (rank 1) could not connect to machine 0 at {url} within 2 s")


# -------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_machines": 2, "machine_rank": 2}, r"launch: machine_rank=2, expected 0..1"),
        ({"num_machines": 2, "dist_url": "auto"}, r"launch: dist_url='auto' with num_machines=2, expected tcp://HOST:PORT"),
        ({"dist_url": "file:///tmp/x"}, r"launch: dist_url='file:///tmp/x', expected 'tcp://HOST:PORT'"),
        ({"device": "tpu"}, r"launch: device='tpu', expected 'cpu' or 'cuda'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(DistributedError, match=message):
        launch(rank_and_threads, 2, **{"device": "cpu", **kwargs})


def test_local_function_is_refused_before_spawning():
    def local(): ...

    with pytest.raises(DistributedError, match=r"expected a module-level function"):
        launch(local, 2, device="cpu")


def test_zero_workers():
    with pytest.raises(DistributedError, match=r"launch: num_gpus_per_machine=0, expected an int >= 1"):
        launch(rank_and_threads, 0, device="cpu")
