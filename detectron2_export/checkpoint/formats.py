"""Read a checkpoint file into detectron2's checkpoint dict ``{"model": state_dict, ...}``.

Accepted: model-zoo ``.pkl`` (``{"model": {name: ndarray}, "__author__": ...}``), a plain pickled
state dict, and ``torch.save`` files (zip or legacy format) with or without a ``"model"`` key.
The format is told from the content, not the extension. Nothing in the file is executed: pickles
go through :mod:`.safe_pickle`, torch files through ``torch.load(weights_only=True)``.
Caffe2 / Detectron1 blob dicts (Detectron1's ``{"blobs": ...}`` or an ImageNet blob dict, names like
``res2_0_branch2a_w``) are returned as upstream's checkpointer returns them:
``{"model": blobs without *_momentum, "__author__": "Caffe2", "matching_heuristics": True}``, so the
loader converts their names (:mod:`.c2_model_loading`).
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import CheckpointError
from .safe_pickle import safe_load_pickle

__all__ = ["load_checkpoint_file"]

logger = logging.getLogger(__name__)

# torch.save's legacy (non-zip) format starts with a pickled magic number.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_CAFFE2_BLOB_NAME = re.compile(r"_(w|b|s|rm|riv|momentum)$")


def load_checkpoint_file(path: str) -> dict[str, Any]:
    """The checkpoint at local ``path`` as a dict whose ``"model"`` is a state dict (arrays or tensors)."""
    if _starts_like_zip(path):
        return _as_checkpoint(_torch_load(path), path)
    data = safe_load_pickle(path)
    if isinstance(data, int) and data == _TORCH_LEGACY_MAGIC:
        return _as_checkpoint(_torch_load(path), path)
    if not isinstance(data, Mapping):
        raise CheckpointError(
            f"{path}: pickled object={type(data).__name__}, expected a dict (a state dict or a checkpoint)"
        )
    if "blobs" in data or _looks_like_caffe2_blobs(data):
        blobs = data["blobs"] if "blobs" in data else data  # ImageNet models have no "blobs"
        if not isinstance(blobs, Mapping):
            raise CheckpointError(f"{path}: 'blobs'={type(blobs).__name__}, expected a dict of Caffe2 blobs")
        model = {k: v for k, v in blobs.items() if not str(k).endswith("_momentum")}  # solver state
        return {"model": model, "__author__": "Caffe2", "matching_heuristics": True}
    if "model" in data and "__author__" in data:
        logger.info("Reading a file from '%s'", data["__author__"])
    return _as_checkpoint(dict(data), path)


def _torch_load(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refusing to load: this torch file needs arbitrary code to unpickle, expected tensors "
            f"and plain containers only (torch.load(weights_only=True) said: {str(e).splitlines()[0]})"
        ) from e
    except (RuntimeError, EOFError, ValueError, KeyError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: corrupt torch checkpoint ({type(e).__name__}: {e})") from e


def _starts_like_zip(path: str) -> bool:
    """torch.save's default format is a zip archive; a pickle never starts with the zip signature."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def _looks_like_caffe2_blobs(data: Mapping[Any, Any]) -> bool:
    keys = [k for k in data.keys() if isinstance(k, str)]
    return bool(keys) and not any("." in k for k in keys) and any(_CAFFE2_BLOB_NAME.search(k) for k in keys)


def _as_checkpoint(loaded: Any, path: str) -> dict[str, Any]:
    """Wrap a bare state dict as ``{"model": ...}`` (detectron2's rule for .pth files)."""
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"{path}: loaded object={type(loaded).__name__}, expected a dict")
    checkpoint = dict(loaded) if "model" in loaded else {"model": dict(loaded)}
    if not isinstance(checkpoint["model"], Mapping):
        raise CheckpointError(
            f"{path}: 'model'={type(checkpoint['model']).__name__}, expected a state dict (name -> array/tensor)"
        )
    return checkpoint
