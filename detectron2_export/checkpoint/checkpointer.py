"""``DetectionCheckpointer``: detectron2's (and fvcore's) checkpoint loading and saving.

Loading is lenient the way detectron2's is (``strict=False``): weights whose shape differs from
the model's are skipped with a warning naming the key and both shapes, and missing / unexpected
keys are logged, grouped by module. Everything that would give silently wrong weights (missing
file, corrupt or unsafe file, non-array values) raises CheckpointError instead.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from ..utils.file_io import PathManager, atomic_write
from .c2_model_loading import align_and_update_state_dicts
from .catalog import get_local_path
from .formats import load_checkpoint_file

__all__ = ["DetectionCheckpointer", "IncompatibleKeys"]

logger = logging.getLogger(__name__)

_LAST_CHECKPOINT = "last_checkpoint"


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]
    incorrect_shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # (key, checkpoint, model)


class DetectionCheckpointer:
    """Load a model's weights from a detectron2 / PyTorch checkpoint, save them as ``.pth``.

    Args:
        model: the model (a DataParallel / DistributedDataParallel wrapper is unwrapped).
        save_dir: where :meth:`save` writes and where :meth:`resume_or_load` looks for the last
            checkpoint.
        save_to_disk: whether :meth:`save` writes anything (default: yes).
        checkpointables: other objects with ``state_dict()`` / ``load_state_dict()`` (optimizer,
            scheduler...) saved and loaded under their keyword name.
    """

    def __init__(self, model: nn.Module, save_dir: str = "", *, save_to_disk: bool | None = None,
                 **checkpointables: Any) -> None:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        self.model = model
        self.save_dir = save_dir
        self.save_to_disk = True if save_to_disk is None else save_to_disk
        self.checkpointables: dict[str, Any] = dict(checkpointables)
        self.logger = logger
        self.path_manager = PathManager

    # ---------------------------------------------------------------------------------------- load
    def load(self, path: str, checkpointables: Iterable[str] | None = None) -> dict[str, Any]:
        """Load ``path`` (local file, URL, ``detectron2://`` name, or any scheme with a handler on
        ``PathManager``) into the model.

        ``path?matching_heuristics=True`` matches the checkpoint's keys to the model's by suffix
        (:func:`.align_and_update_state_dicts`), as upstream. Returns what remains of the checkpoint dict after the model weights and the loaded
        checkpointables are taken out ({} for an empty ``path``, which loads nothing).
        """
        if not path:
            self.logger.info("No checkpoint found. Initializing model from scratch")
            return {}
        self.logger.info("[Checkpointer] Loading from %s ...", path)
        path, matching_heuristics = _parse_query(path)
        local = get_local_path(path)
        if not os.path.isfile(local):
            why = "is a directory" if os.path.isdir(local) else "does not exist"
            raise CheckpointError(f"Checkpoint {path}: file {local} {why}, expected a .pkl or .pth checkpoint file")
        checkpoint = load_checkpoint_file(local)
        if matching_heuristics:
            checkpoint["matching_heuristics"] = True
        incompatible = self._load_model(checkpoint, local)
        self._log_incompatible_keys(incompatible)
        # what did not load, for callers that must refuse a partial load (the CLIs)
        self.incompatible_keys = incompatible._replace(
            missing_keys=_filter_reused_missing_keys(self.model, incompatible.missing_keys)
        )
        for key in self.checkpointables if checkpointables is None else checkpointables:
            if key in checkpoint:
                self.logger.info("Loading %s from %s ...", key, path)
                self.checkpointables[key].load_state_dict(checkpoint.pop(key))
        return checkpoint

    def resume_or_load(self, path: str, *, resume: bool = True) -> dict[str, Any]:
        """With ``resume`` and a ``last_checkpoint`` in save_dir, load that (with checkpointables);
        otherwise load only the model weights from ``path``."""
        if resume and self.has_checkpoint():
            return self.load(self.get_checkpoint_file())
        return self.load(path, checkpointables=[])

    def _load_model(self, checkpoint: dict[str, Any], path: str) -> IncompatibleKeys:
        state_dict = _to_tensors(checkpoint.pop("model"), path)
        if checkpoint.get("matching_heuristics", False):
            state_dict = align_and_update_state_dicts(
                self.model.state_dict(), state_dict, c2_conversion=checkpoint.get("__author__") == "Caffe2"
            )
        _strip_prefix_if_present(state_dict, "module.")
        model_state = self.model.state_dict()
        incorrect_shapes = []
        for key in list(state_dict):
            if key not in model_state or isinstance(model_state[key], nn.parameter.UninitializedParameter):
                continue
            shape_model, shape_ckpt = tuple(model_state[key].shape), tuple(state_dict[key].shape)
            if shape_model != shape_ckpt:
                incorrect_shapes.append((key, shape_ckpt, shape_model))
                del state_dict[key]
        result = self.model.load_state_dict(state_dict, strict=False)
        missing = list(result.missing_keys)
        # pixel_mean/std come from the config; old checkpoints may lack them.
        own_buffers = dict(self.model.named_buffers(recurse=False))
        missing = [k for k in missing if not (k in ("pixel_mean", "pixel_std") and k in own_buffers)]
        # cell anchors used to be saved; they are non-persistent buffers now.
        unexpected = [k for k in result.unexpected_keys if "anchor_generator.cell_anchors" not in k]
        return IncompatibleKeys(missing, unexpected, incorrect_shapes)

    def _log_incompatible_keys(self, incompatible: IncompatibleKeys) -> None:
        for key, shape_ckpt, shape_model in incompatible.incorrect_shapes:
            self.logger.warning(
                "Skip loading parameter '%s' to the model due to incompatible shapes: %s in the checkpoint "
                "but %s in the model! You might want to double check if this is expected.",
                key, shape_ckpt, shape_model,
            )
        missing = _filter_reused_missing_keys(self.model, incompatible.missing_keys)
        if missing:
            self.logger.warning(
                "Some model parameters or buffers are not found in the checkpoint:\n%s", _grouped(missing)
            )
        if incompatible.unexpected_keys:
            self.logger.warning(
                "The checkpoint state_dict contains keys that are not used by the model:\n%s",
                _grouped(incompatible.unexpected_keys),
            )

    # ---------------------------------------------------------------------------------------- save
    def save(self, name: str, **kwargs: Any) -> None:
        """Write ``{"model": state_dict, <checkpointables>, **kwargs}`` to ``save_dir/name.pth``."""
        if not self.save_dir or not self.save_to_disk:
            return
        data: dict[str, Any] = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        os.makedirs(self.save_dir, exist_ok=True)
        with atomic_write(save_file) as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def has_checkpoint(self) -> bool:
        return os.path.exists(os.path.join(self.save_dir, _LAST_CHECKPOINT))

    def get_checkpoint_file(self) -> str:
        """The checkpoint named in ``save_dir/last_checkpoint``, or "" if there is none."""
        try:
            with open(os.path.join(self.save_dir, _LAST_CHECKPOINT)) as f:
                last = f.read().strip()
        except OSError:
            return ""
        return os.path.join(self.save_dir, last)

    def get_all_checkpoint_files(self) -> list[str]:
        return [
            os.path.join(self.save_dir, f)
            for f in sorted(os.listdir(self.save_dir))
            if f.endswith(".pth") and os.path.isfile(os.path.join(self.save_dir, f))
        ]

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        with open(os.path.join(self.save_dir, _LAST_CHECKPOINT), "w") as f:
            f.write(last_filename_basename)


def _parse_query(path: str) -> tuple[str, bool]:
    """``X?matching_heuristics=True`` -> (X, True); any other query is an error, as upstream."""
    parsed = urllib.parse.urlparse(path)
    if not parsed.query:
        return path, False
    queries = urllib.parse.parse_qs(parsed.query)
    heuristics = queries.pop("matching_heuristics", ["False"]) == ["True"]
    if queries:
        raise CheckpointError(
            f"Checkpoint {path}: query {parsed.query!r}, expected none or 'matching_heuristics=True'"
        )
    return parsed._replace(query="").geturl(), heuristics


def _to_tensors(state_dict: Mapping[str, Any], path: str) -> dict[str, torch.Tensor]:
    """numpy arrays -> tensors (native byte order); anything else is an error."""
    out = {}
    for key, value in state_dict.items():
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise CheckpointError(f"{path}: model[{key!r}] is an object array, expected a numeric array")
            value = torch.from_numpy(np.asarray(value, dtype=value.dtype.newbyteorder("="), order="C"))
        elif not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: model[{key!r}]={type(value).__name__}, expected a numpy array or torch tensor"
            )
        out[key] = value
    return out


def _strip_prefix_if_present(state_dict: dict[str, Any], prefix: str) -> None:
    """Drop ``prefix`` from every key if all keys have it (checkpoints of DataParallel models)."""
    keys = list(state_dict)
    if not keys or not all(k.startswith(prefix) for k in keys):
        return
    for key in keys:
        state_dict[key[len(prefix):]] = state_dict.pop(key)


def _filter_reused_missing_keys(model: nn.Module, keys: list[str]) -> list[str]:
    """A tensor shared under several names counts as loaded if any of its names was loaded."""
    keyset = set(keys)
    names_of: dict[int, set[str]] = defaultdict(set)
    for prefix, module in model.named_modules(remove_duplicate=False):
        tensors = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
        for name, tensor in tensors:
            names_of[id(tensor)].add(f"{prefix}.{name}" if prefix else name)
    for names in names_of.values():
        if any(n in keyset for n in names) and not all(n in keyset for n in names):
            keyset -= names
    return [k for k in keys if k in keyset]


def _grouped(keys: list[str]) -> str:
    """``a.b.weight, a.b.bias`` -> ``  a.b.{bias, weight}``, one line per module (fvcore's format)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        head, dot, tail = key.rpartition(".")
        if dot:
            groups[head].append(tail)
        else:
            groups.setdefault(key, [])
    lines = []
    for head, tails in groups.items():
        if not tails:
            lines.append(f"  {head}")
        elif len(tails) == 1:
            lines.append(f"  {head}.{tails[0]}")
        else:
            lines.append(f"  {head}.{{{', '.join(sorted(tails))}}}")
    return "\n".join(lines)
