"""detectron2.utils.env: ``seed_all_rng`` and ``TORCH_VERSION``."""

from __future__ import annotations

import logging
import os
import random
from datetime import datetime

import numpy as np
import torch

__all__ = ["seed_all_rng", "TORCH_VERSION"]

TORCH_VERSION = tuple(int(x) for x in torch.__version__.split(".")[:2])
"""(major, minor) of the installed torch, e.g. (2, 14); scripts compare it with tuples."""


def seed_all_rng(seed: int | None = None) -> int:
    """Seed the RNGs of torch (CPU and CUDA), numpy and Python's ``random``, and set
    ``PYTHONHASHSEED`` (for subprocesses), so a run can be repeated.

    Args:
        seed: the seed; None draws a strong one from the pid, the clock and ``os.urandom`` (and
            logs it, so the run can still be repeated).

    Returns:
        The seed used.
    """
    if seed is None:
        seed = os.getpid() + int(datetime.now().strftime("%S%f")) + int.from_bytes(os.urandom(2), "big")
        logging.getLogger(__name__).info("Using a generated random seed %d", seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed
