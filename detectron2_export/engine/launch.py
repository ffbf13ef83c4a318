"""``launch``: run a function on every process of a torch.distributed job, as ``detectron2.engine.launch``.

One launcher per machine spawns one worker process per GPU (nccl) or per CPU worker (gloo, with
``threads_per_worker`` threads each). The launcher of machine 0 hosts the rendezvous (a
``TCPStore`` at ``dist_url``); every launcher and every worker connects to it. Beyond upstream,
failures end the whole job in bounded time with a message naming the rank:

- a machine that does not join within ``connect_timeout``: every launcher that did join raises,
  naming the missing machine and its ranks; one that cannot reach machine 0 raises too;
- a worker that raises or dies: its launcher stops its other workers and posts the reason in the
  store; the other launchers see it within a second, stop their workers and raise the same reason;
- a launcher that vanishes (machine 0's store gone): the other launchers stop and say so.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..errors import DistributedError
from ..utils import comm
from ..utils.file_io import atomic_write

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_CONNECT_TIMEOUT", "launch"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)  # as detectron2: the longest a collective may wait for a slow rank
DEFAULT_CONNECT_TIMEOUT = timedelta(minutes=5)  # how long machines may take to join

_POLL_SECONDS = 0.5  # how often a launcher looks at its workers and at the store
_ABORT_KEY = "launch/abort"
_ROOT_CAUSE_GRACE_SECONDS = 1.0  # a local communication error may be the echo of a failure elsewhere
_WORKER_FAILURES = (mp.ProcessExitedException, mp.ProcessRaisedException)


def _find_free_port() -> int:
    """A port free on this machine now (``dist_url="auto"``; another process may take it, rarely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parse_dist_url(dist_url: str) -> tuple[str, int]:
    parsed = urlparse(dist_url)
    if parsed.scheme != "tcp" or not parsed.hostname or parsed.port is None:
        raise DistributedError(
            f"launch: dist_url={dist_url!r}, expected 'tcp://HOST:PORT' (machine 0's address) or 'auto' (one machine)"
        )
    return parsed.hostname, parsed.port


@dataclass(frozen=True)
class _Job:
    """What every launcher and worker of one job agrees on (picklable: passed to spawned workers)."""

    num_workers_per_machine: int
    num_machines: int
    machine_rank: int
    host: str
    port: int
    backend: str
    timeout: timedelta
    connect_timeout: timedelta
    threads_per_worker: int | None
    run_dir: str  # this machine's launcher's scratch directory (result and error files)

    @property
    def world_size(self) -> int:
        return self.num_workers_per_machine * self.num_machines

    @property
    def dist_url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def ranks_of(self, machine: int) -> str:
        first = machine * self.num_workers_per_machine
        last = first + self.num_workers_per_machine - 1
        return f"rank {first}" if first == last else f"ranks {first}-{last}"

    def describe(self, local_rank: int, pid: int | None = None) -> str:
        rank = self.machine_rank * self.num_workers_per_machine + local_rank
        where = f"machine {self.machine_rank}, local rank {local_rank}" + (f", pid {pid}" if pid is not None else "")
        return f"worker rank {rank} ({where})"

    def error_file(self, local_rank: int) -> str:
        return os.path.join(self.run_dir, f"error.{local_rank}.txt")

    @property
    def result_file(self) -> str:
        return os.path.join(self.run_dir, "result.pkl")


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str | None = None,
    args: Sequence[Any] = (),
    timeout: timedelta = DEFAULT_TIMEOUT,
    *,
    device: str | None = None,
    threads_per_worker: int | None = None,
    connect_timeout: timedelta = DEFAULT_CONNECT_TIMEOUT,
) -> Any:
    """Run ``main_func(*args)`` on ``num_gpus_per_machine`` processes on each of ``num_machines`` machines.

    Call it once per machine with that machine's ``machine_rank``. ``device`` "cuda" (default when
    CUDA is available) gives one process per GPU and nccl; "cpu" gives ``num_gpus_per_machine``
    processes with gloo and ``threads_per_worker`` torch threads each. In a world of one process
    ``main_func`` runs here, in this process. ``main_func`` must be a module-level function (workers
    are spawned and import it) and the ``args`` picklable.

    Returns what ``main_func`` returned on rank 0 on machine 0 (pickled back to the launcher), and
    None on the other machines. Raises ``DistributedError`` naming the rank when any rank fails.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    _check_arguments(main_func, num_gpus_per_machine, num_machines, machine_rank, device)
    if num_gpus_per_machine * num_machines == 1:
        if threads_per_worker:
            torch.set_num_threads(threads_per_worker)
        return main_func(*args)
    if dist_url is None or dist_url == "auto":
        if num_machines != 1:
            raise DistributedError(
                f"launch: dist_url={dist_url!r} with num_machines={num_machines}, expected tcp://HOST:PORT of "
                "machine 0 (the same on every machine; 'auto' picks a port on one machine only)"
            )
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    host, port = _parse_dist_url(dist_url)
    with tempfile.TemporaryDirectory(prefix="d2export_launch_") as run_dir:
        job = _Job(
            num_gpus_per_machine,
            num_machines,
            machine_rank,
            host,
            port,
            "nccl" if device == "cuda" else "gloo",
            timeout,
            connect_timeout,
            threads_per_worker,
            run_dir,
        )
        store = _join_machines(job)
        logger.info(
            "Launching %d workers on machine %d of %d (%s, %s) at %s",
            num_gpus_per_machine, machine_rank, num_machines, job.ranks_of(machine_rank), job.backend, job.dist_url,
        )
        context = mp.start_processes(
            _distributed_worker,
            nprocs=num_gpus_per_machine,
            args=(main_func, tuple(args), job),
            join=False,
            daemon=False,
            start_method="spawn",
        )
        first = machine_rank * num_gpus_per_machine
        logger.info("Workers: %s", ", ".join(f"rank {first + i} pid {p.pid}" for i, p in enumerate(context.processes)))
        _monitor(context, store, job)
        _finish(store, job)
        if machine_rank == 0:
            with open(job.result_file, "rb") as f:
                return pickle.load(f)
        return None


def _check_arguments(
    main_func: Callable, num_per_machine: int, num_machines: int, machine_rank: int, device: str
) -> None:
    if num_per_machine < 1:
        raise DistributedError(f"launch: num_gpus_per_machine={num_per_machine}, expected an int >= 1")
    if num_machines < 1:
        raise DistributedError(f"launch: num_machines={num_machines}, expected an int >= 1")
    if not 0 <= machine_rank < num_machines:
        raise DistributedError(f"launch: machine_rank={machine_rank}, expected 0..{num_machines - 1}")
    if device not in ("cpu", "cuda"):
        raise DistributedError(f"launch: device={device!r}, expected 'cpu' or 'cuda'")
    if device == "cuda":
        available = torch.cuda.device_count()
        if num_per_machine > available:
            raise DistributedError(
                f"launch: num_gpus_per_machine={num_per_machine}, expected at most the {available} CUDA devices here"
            )
    qualname = getattr(main_func, "__qualname__", "")
    if num_per_machine * num_machines > 1 and ("<locals>" in qualname or "<lambda>" in qualname):
        raise DistributedError(
            f"launch: main_func={qualname!r}, expected a module-level function (spawned workers import it)"
        )


def _join_machines(job: _Job) -> dist.TCPStore:
    """Machine 0 hosts the store; each launcher announces itself and waits until every machine has."""
    try:
        store = dist.TCPStore(
            job.host, job.port, is_master=job.machine_rank == 0, timeout=job.connect_timeout, wait_for_workers=False
        )
    except (RuntimeError, OSError) as e:
        if job.machine_rank == 0:
            raise DistributedError(f"machine 0 could not listen on {job.dist_url}: {e}") from e
        raise DistributedError(
            f"machine {job.machine_rank} ({job.ranks_of(job.machine_rank)}) could not connect to machine 0 at "
            f"{job.dist_url} within {job.connect_timeout.total_seconds():g} s: {e}"
        ) from e
    store.set(f"launch/machine/{job.machine_rank}", "joined")
    keys = [f"launch/machine/{m}" for m in range(job.num_machines)]
    try:
        store.wait(keys, job.connect_timeout)
    except RuntimeError as e:  # DistError is one
        missing = [m for m, key in enumerate(keys) if not _has_key(store, key)]
        if not missing:
            raise DistributedError(f"machine {job.machine_rank}: lost the rendezvous at {job.dist_url}: {e}") from e
        names = "; ".join(f"machine {m} ({job.ranks_of(m)})" for m in missing)
        raise DistributedError(
            f"{names} did not join {job.dist_url} within {job.connect_timeout.total_seconds():g} s "
            f"(start one launcher per machine with --num-machines {job.num_machines} and its --machine-rank)"
        ) from e
    store.set_timeout(job.timeout)
    return store


def _has_key(store: dist.Store, key: str) -> bool:
    try:
        return store.check([key])
    except RuntimeError:
        return False


def _distributed_worker(local_rank: int, main_func: Callable, args: tuple, job: _Job) -> None:
    """One spawned worker: join the process group, run ``main_func``, hand rank 0's result back."""
    rank = job.machine_rank * job.num_workers_per_machine + local_rank
    try:
        if job.threads_per_worker:
            torch.set_num_threads(job.threads_per_worker)
        if job.backend == "nccl":
            torch.cuda.set_device(local_rank)
        store = dist.TCPStore(job.host, job.port, is_master=False, timeout=job.connect_timeout)
        store.set_timeout(job.timeout)  # from now on, the wait for the slowest rank
        dist.init_process_group(
            job.backend, store=dist.PrefixStore("pg", store), rank=rank, world_size=job.world_size, timeout=job.timeout
        )
        comm.create_local_process_group(job.num_workers_per_machine, timeout=job.timeout)
        comm.synchronize()
        result = main_func(*args)
        comm.synchronize()
        if rank == 0:
            with atomic_write(job.result_file) as f:
                pickle.dump(result, f)
        dist.destroy_process_group()
    except Exception as e:
        with open(job.error_file(local_rank), "w") as f:
            f.write(f"{type(e).__name__}: {e}")
        raise


def _monitor(context: mp.ProcessContext, store: dist.TCPStore, job: _Job) -> None:
    """Wait for this machine's workers; stop them and raise on a local failure or one posted by another machine."""
    while True:
        try:
            if context.join(timeout=_POLL_SECONDS, grace_period=_POLL_SECONDS):
                return
        except _WORKER_FAILURES as e:
            raise DistributedError(_post_abort(store, _describe_failure(e, job), job)) from None
        try:
            posted = store.get(_ABORT_KEY).decode() if store.check([_ABORT_KEY]) else None
        except RuntimeError as e:  # DistError is one
            _terminate(context)
            raise DistributedError(
                f"machine {job.machine_rank}: lost the rendezvous at {job.dist_url} (machine 0's launcher exited?): {e}"
            ) from None
        if posted is not None:
            _terminate(context)
            raise DistributedError(posted)


def _describe_failure(e: mp.ProcessExitedException | mp.ProcessRaisedException, job: _Job) -> str:
    who = job.describe(e.error_index, e.error_pid)
    if isinstance(e, mp.ProcessExitedException):
        if e.signal_name:
            return f"{who} was killed by signal {e.signal_name}"
        return f"{who} exited with status {e.exit_code}"
    try:
        with open(job.error_file(e.error_index)) as f:
            reason = f.read()
    except OSError:
        reason = str(e).strip().splitlines()[-1]
    logger.debug("Traceback of %s:%s", who, e)
    return f"{who} failed: {reason}"


def _post_abort(store: dist.TCPStore, message: str, job: _Job) -> str:
    """Post this machine's failure unless another machine's came first; returns the one to report."""
    if job.num_machines == 1:
        return message
    deadline = time.monotonic() + _ROOT_CAUSE_GRACE_SECONDS
    try:
        while time.monotonic() < deadline and not store.check([_ABORT_KEY]):
            time.sleep(0.1)
        first = store.compare_set(_ABORT_KEY, "", message).decode()
    except RuntimeError:
        return message
    return message if first == message else f"{first} (then on machine {job.machine_rank}: {message})"


def _terminate(context: mp.ProcessContext) -> None:
    for process in context.processes:
        if process.is_alive():
            process.terminate()
    for process in context.processes:
        process.join(_POLL_SECONDS * 4)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
            process.join()


def _finish(store: dist.TCPStore, job: _Job) -> None:
    """Machine 0's launcher keeps the store up until every machine's workers have exited."""
    store.set(f"launch/done/{job.machine_rank}", "done")
    if job.machine_rank != 0:
        return
    keys = [f"launch/done/{m}" for m in range(job.num_machines)]
    deadline = time.monotonic() + job.timeout.total_seconds()
    while not store.check(keys):
        if store.check([_ABORT_KEY]):
            raise DistributedError(store.get(_ABORT_KEY).decode())
        if time.monotonic() > deadline:
            raise DistributedError(f"machine 0: the other machines did not finish within {job.timeout}")
        time.sleep(_POLL_SECONDS / 5)
