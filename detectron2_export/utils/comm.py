"""Process-group helpers with detectron2's names (``detectron2.utils.comm``).

Every function works without ``torch.distributed`` being initialised: it then behaves as a world of
one process (rank 0), so library code calls them unconditionally. Objects are exchanged through a
gloo group (the world group itself under gloo, a second group under nccl) so that any picklable
value travels on CPU.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "get_world_size",
    "get_rank",
    "get_local_rank",
    "get_local_size",
    "is_main_process",
    "synchronize",
    "all_gather",
    "gather",
    "broadcast_object",
    "create_local_process_group",
    "get_local_process_group",
]

_LOCAL_PROCESS_GROUP: dist.ProcessGroup | None = None
_LOCAL_SIZE: int = 1


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    """Number of processes in the job (1 without torch.distributed)."""
    return dist.get_world_size() if _initialized() else 1


def get_rank() -> int:
    """Global rank of this process (0 without torch.distributed)."""
    return dist.get_rank() if _initialized() else 0


def create_local_process_group(num_workers_per_machine: int, timeout: timedelta | None = None) -> None:
    """Create one group per machine (ranks ``m * n .. m * n + n - 1``); every rank must call it.

    ``get_local_rank`` / ``get_local_size`` answer from it. ``new_group`` is collective over the
    world, so each rank creates every machine's group and keeps its own.
    """
    global _LOCAL_PROCESS_GROUP, _LOCAL_SIZE
    world_size = get_world_size()
    if world_size % num_workers_per_machine:
        raise ValueError(
            f"create_local_process_group: num_workers_per_machine={num_workers_per_machine}, expected a divisor "
            f"of the world size {world_size}"
        )
    machine = get_rank() // num_workers_per_machine
    for m in range(world_size // num_workers_per_machine):
        ranks = list(range(m * num_workers_per_machine, (m + 1) * num_workers_per_machine))
        group = dist.new_group(ranks, timeout=timeout)
        if m == machine:
            _LOCAL_PROCESS_GROUP = group
    _LOCAL_SIZE = num_workers_per_machine


def get_local_process_group() -> dist.ProcessGroup | None:
    """The group of the processes on this machine (None until created)."""
    return _LOCAL_PROCESS_GROUP


def get_local_rank() -> int:
    """Rank of this process among the processes of its machine."""
    if not _initialized() or _LOCAL_PROCESS_GROUP is None:
        return 0
    return dist.get_rank(group=_LOCAL_PROCESS_GROUP)


def get_local_size() -> int:
    """Number of processes on this machine."""
    return _LOCAL_SIZE if _initialized() and _LOCAL_PROCESS_GROUP is not None else 1


def is_main_process() -> bool:
    """Rank 0: the process that reports results and writes files."""
    return get_rank() == 0


def synchronize() -> None:
    """Barrier over all processes (a no-op in a world of one)."""
    if get_world_size() == 1:
        return
    if dist.get_backend() == dist.Backend.NCCL:
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


@functools.lru_cache(maxsize=None)
def _get_global_gloo_group() -> dist.ProcessGroup:
    """The world group if it is gloo, else a gloo group over all ranks (cached: created once, collectively)."""
    if dist.get_backend() == dist.Backend.NCCL:
        return dist.new_group(backend="gloo")
    return dist.group.WORLD


def all_gather(data: Any, group: dist.ProcessGroup | None = None) -> list[Any]:
    """Every rank's ``data`` (any picklable object), in rank order, on every rank."""
    if get_world_size() == 1:
        return [data]
    group = _get_global_gloo_group() if group is None else group
    output: list[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group: dist.ProcessGroup | None = None) -> list[Any]:
    """Every rank's ``data`` in rank order on (global) rank ``dst``; ``[]`` on the other ranks."""
    if get_world_size() == 1:
        return [data]
    group = _get_global_gloo_group() if group is None else group
    world_size = dist.get_world_size(group)
    if world_size == 1:
        return [data]
    output: list[Any] | None = [None] * world_size if get_rank() == dst else None
    dist.gather_object(data, output, dst=dst, group=group)
    return output if output is not None else []


def broadcast_object(data: Any, src: int = 0, group: dist.ProcessGroup | None = None) -> Any:
    """Rank ``src``'s ``data`` on every rank (the argument of the other ranks is ignored)."""
    if get_world_size() == 1:
        return data
    group = _get_global_gloo_group() if group is None else group
    box = [data if get_rank() == src else None]
    dist.broadcast_object_list(box, src=src, group=group)
    return box[0]
