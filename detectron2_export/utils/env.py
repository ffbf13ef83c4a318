"""detectron2.utils.env: ``seed_all_rng``, ``TORCH_VERSION``, and the custom environment hook
(``$DETECTRON2_ENV_MODULE``: a module or .py file whose ``setup_environment()`` runs first)."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import random
import sys
from datetime import datetime
from types import ModuleType

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["seed_all_rng", "TORCH_VERSION", "setup_environment", "setup_custom_environment"]

_ENV_SETUP_DONE = False

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


def _import_file(module_name: str, file_path: str, make_importable: bool = False) -> ModuleType:
    """Import the Python file ``file_path`` as module ``module_name`` (registered in
    ``sys.modules`` when ``make_importable``)."""
    spec = importlib.util.spec_from_file_location(module_name, file_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"_import_file: file_path={file_path!r}, expected a Python source file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if make_importable:
        sys.modules[module_name] = module
    return module


def setup_custom_environment(custom_module: str) -> None:
    """Run ``setup_environment()`` of ``custom_module``: a module name, or a path ending in .py."""
    if custom_module.endswith(".py"):
        module = _import_file("detectron2_export.utils.env.custom_module", custom_module)
    else:
        module = importlib.import_module(custom_module)
    if not callable(getattr(module, "setup_environment", None)):
        raise ConfigError(
            f"setup_custom_environment: custom_module={custom_module!r}, expected a module with a "
            "callable setup_environment()"
        )
    module.setup_environment()


def setup_environment() -> None:
    """Once per process: run the custom environment module named by ``$DETECTRON2_ENV_MODULE``,
    if set (detectron2's hook for site-specific setup)."""
    global _ENV_SETUP_DONE
    if _ENV_SETUP_DONE:
        return
    _ENV_SETUP_DONE = True
    custom_module_path = os.environ.get("DETECTRON2_ENV_MODULE")
    if custom_module_path:
        setup_custom_environment(custom_module_path)
