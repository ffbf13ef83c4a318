"""Match checkpoint keys to model keys by name suffix (detectron2's ``matching_heuristics``).

Used when a checkpoint says ``"matching_heuristics": True``: its keys may lack the model's
prefixes (e.g. a bare backbone saved as ``res2.0.conv1.weight`` for a model that has
``backbone.bottom_up.res2.0.conv1.weight``). Each model key takes the longest checkpoint key it
ends with (at a ``.`` boundary); keys with another shape are skipped with a warning. Caffe2 /
Detectron1 blob-name conversion (``c2_conversion=True``) is not supported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointError

__all__ = ["align_and_update_state_dicts"]

logger = logging.getLogger(__name__)


def _matches(model_key: str, ckpt_key: str) -> bool:
    return model_key == ckpt_key or model_key.endswith("." + ckpt_key)


def align_and_update_state_dicts(
    model_state_dict: Mapping[str, Any], ckpt_state_dict: Mapping[str, Any], c2_conversion: bool = True
) -> dict[str, Any]:
    """Rename ``ckpt_state_dict`` keys to the model keys they match; unmatched keys are kept as-is.

    Raises CheckpointError if one checkpoint key would fill two model keys, or if
    ``c2_conversion`` (Caffe2 blob names) is requested.
    """
    if c2_conversion:
        raise CheckpointError(
            "align_and_update_state_dicts: c2_conversion=True (Caffe2 / Detectron1 blob names), "
            "expected a checkpoint with PyTorch module names; Caffe2 name conversion is not supported"
        )
    ckpt_keys = sorted(ckpt_state_dict.keys())
    matched: dict[str, str] = {}  # checkpoint key -> model key
    result: dict[str, Any] = {}
    for model_key in sorted(model_state_dict.keys()):
        candidates = [k for k in ckpt_keys if _matches(model_key, k)]
        if not candidates:
            continue
        ckpt_key = max(candidates, key=len)  # the most specific match; ties: the first in sorted order
        value = ckpt_state_dict[ckpt_key]
        model_shape = tuple(model_state_dict[model_key].shape)
        if tuple(value.shape) != model_shape:
            logger.warning(
                "Shape of %s in checkpoint is %s, while shape of %s in model is %s. %s will not be loaded. "
                "Please double check and see if this is desired.",
                ckpt_key, tuple(value.shape), model_key, model_shape, ckpt_key,
            )
            continue
        if ckpt_key in matched:
            raise CheckpointError(
                f"align_and_update_state_dicts: checkpoint key {ckpt_key!r} matches two model keys "
                f"({matched[ckpt_key]!r} and {model_key!r}), expected at most one"
            )
        matched[ckpt_key] = model_key
        result[model_key] = value
    if not matched:
        logger.warning("No weights in checkpoint matched with model.")
        return dict(ckpt_state_dict)
    lines = [f"  {model_key} <- {ckpt_key} {tuple(result[model_key].shape)}" for ckpt_key, model_key in sorted(
        matched.items(), key=lambda kv: kv[1])]
    logger.info("Following weights matched with model:\n%s", "\n".join(lines))
    for k in ckpt_keys:
        if k not in matched:
            result[k] = ckpt_state_dict[k]
    return result
