"""Load Caffe2 / Detectron1 weights and prefix-less checkpoints (detectron2's ``c2_model_loading``).

Two steps, as upstream:

1. ``c2_conversion``: Caffe2 blob names (``conv1_w``, ``res2_0_branch2a_bn_s``,
   ``fpn_inner_res5_2_sum_w``, ``rpn_cls_logits_fpn2_w``, ``cls_score_w``, ...) are renamed to
   detectron2 module names (``stem.conv1.weight``, ``res2.0.conv1.norm.weight``,
   ``fpn_lateral5.weight``, ``proposal_generator.rpn_head.objectness_logits.weight``,
   ``cls_score.weight``), and the class layout of the box / mask predictors is changed from
   Detectron1's (background first, class-specific background boxes and masks) to detectron2's
   (background last for the classifier, no background rows for boxes and masks).
2. Suffix matching: each model key takes the longest checkpoint key it ends with (at a ``.``
   boundary), so ``stem.conv1.weight`` fills ``backbone.bottom_up.stem.conv1.weight``. Keys with
   another shape are skipped with a warning; unmatched checkpoint keys are kept as they are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tabulate import tabulate

from ..errors import CheckpointError

__all__ = ["align_and_update_state_dicts", "convert_basic_c2_names", "convert_c2_detectron_names"]

logger = logging.getLogger(__name__)

# (regex, replacement), applied in order to every name after "_" became "." (Caffe2 names have
# no dots). Backbone and normalization names, shared by ImageNet and detection models:
_BASIC_RULES: tuple[tuple[str, str], ...] = (
    (r"\.b$", ".bias"),
    (r"\.w$", ".weight"),
    # BatchNorm (affine channel) and GroupNorm both become "norm"
    (r"bn\.s$", "norm.weight"),
    (r"bn\.bias$", "norm.bias"),
    (r"bn\.rm", "norm.running_mean"),
    (r"bn\.running\.mean$", "norm.running_mean"),
    (r"bn\.riv$", "norm.running_var"),
    (r"bn\.running\.var$", "norm.running_var"),
    (r"bn\.gamma$", "norm.weight"),
    (r"bn\.beta$", "norm.bias"),
    (r"gn\.s$", "norm.weight"),
    (r"gn\.bias$", "norm.bias"),
    # the stem; "conv1" alone would also match heads' convs, hence the anchors
    (r"^res\.conv1\.norm\.", "conv1.norm."),
    (r"^conv1\.", "stem.conv1."),
    # residual blocks
    (r"\.branch1\.", ".shortcut."),
    (r"\.branch2a\.", ".conv1."),
    (r"\.branch2b\.", ".conv2."),
    (r"\.branch2c\.", ".conv3."),
    # DensePose heads
    (r"^body\.conv\.fcn", "body_conv_fcn"),
    (r"AnnIndex\.lowres", "ann_index_lowres"),
    (r"Index\.UV\.lowres", "index_uv_lowres"),
    (r"U\.lowres", "u_lowres"),
    (r"V\.lowres", "v_lowres"),
)

# Detection heads (after _BASIC_RULES). The FPN RPN head is shared by all levels; Caffe2 names it
# after the first one ("fpn2").
_DETECTRON_RULES: tuple[tuple[str, str], ...] = (
    (r"conv\.rpn\.fpn2", "proposal_generator.rpn_head.conv"),
    (r"conv\.rpn", "proposal_generator.rpn_head.conv"),
    (r"rpn\.bbox\.pred\.fpn2", "proposal_generator.rpn_head.anchor_deltas"),
    (r"rpn\.cls\.logits\.fpn2", "proposal_generator.rpn_head.objectness_logits"),
    (r"rpn\.bbox\.pred", "proposal_generator.rpn_head.anchor_deltas"),
    (r"rpn\.cls\.logits", "proposal_generator.rpn_head.objectness_logits"),
    # Fast R-CNN box head (fc6/fc7 of 2fc heads, head_conv* of 4conv1fc heads)
    (r"^bbox\.pred", "bbox_pred"),
    (r"^cls\.score", "cls_score"),
    (r"^fc6\.", "box_head.fc1."),
    (r"^fc7\.", "box_head.fc2."),
    (r"^head\.conv", "box_head.conv"),
)

# Mask and keypoint heads, after the FPN names are mapped.
_HEAD_RULES: tuple[tuple[str, str], ...] = (
    (r"\.\[mask\]\.fcn", "mask_head.mask_fcn"),  # StandardROIHeads: _[mask]_fcn1_w
    (r"^\.mask\.fcn", "mask_head.mask_fcn"),
    (r"mask\.fcn\.logits", "mask_head.predictor"),
    (r"conv5\.mask", "mask_head.deconv"),  # Res5ROIHeads
    (r"conv\.fcn", "roi_heads.keypoint_head.conv_fcn"),
    (r"kps\.score\.lowres", "roi_heads.keypoint_head.score_lowres"),
    (r"kps\.score\.", "roi_heads.keypoint_head.score."),
)

_FPN_NAME = re.compile(r"^fpn\.(inner\.)?res(\d+)\.")


def _apply(rules: Sequence[tuple[str, str]], name: str) -> str:
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


def _basic_name(name: str) -> str:
    name = {"pred_b": "linear_b", "pred_w": "linear_w"}.get(name, name)
    return _apply(_BASIC_RULES, name.replace("_", "."))


def convert_basic_c2_names(original_keys: Sequence[str]) -> list[str]:
    """Caffe2 backbone / normalization blob names -> detectron2 names (same order)."""
    return [_basic_name(k) for k in original_keys]


def _fpn_name(name: str) -> str:
    """``fpn.inner.res4.5.sum.lateral.weight`` -> ``fpn_lateral4.weight`` (lateral 1x1 convs),
    ``fpn.res4.5.sum.weight`` -> ``fpn_output4.weight`` (output 3x3 convs); norms kept."""
    m = _FPN_NAME.match(name)
    if m is None:
        return name
    parts = name.split(".")
    kind = "lateral" if m.group(1) else "output"
    norm = ".norm" if "norm" in parts else ""
    return f"fpn_{kind}{int(m.group(2))}{norm}.{parts[-1]}"


def _detectron_name(name: str) -> str:
    name = _apply(_DETECTRON_RULES, _basic_name(name))
    return _apply(_HEAD_RULES, _fpn_name(name))


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def convert_c2_detectron_names(weights: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Rename Detectron1 / Caffe2 blobs to detectron2 names and fix the predictors' class layout.

    Returns ``(renamed weights, {new name: original name})``. Detectron1 predicts a background
    class first: its rows are dropped from ``bbox_pred`` (4 rows) and ``mask_head.predictor``
    (1 row), and moved to the end of ``cls_score``, where detectron2 keeps it.
    """
    logger.info("Renaming Caffe2 weights ......")
    original_keys = sorted(weights.keys())
    renamed = [_detectron_name(k) for k in original_keys]
    if len(set(renamed)) != len(renamed):
        by_name: dict[str, list[str]] = {}
        for orig, new in zip(original_keys, renamed):
            by_name.setdefault(new, []).append(orig)
        clashes = {new: origs for new, origs in by_name.items() if len(origs) > 1}
        raise CheckpointError(
            f"convert_c2_detectron_names: blobs {clashes} map to the same detectron2 name, "
            "expected one blob per name"
        )
    new_weights: dict[str, Any] = {}
    new_to_original: dict[str, str] = {}
    for orig, new in zip(original_keys, renamed):
        new_to_original[new] = orig
        value = weights[orig]
        if new.startswith(("bbox_pred.", "mask_head.predictor.")):
            start = 4 if new.startswith("bbox_pred.") else 1
            new_weights[new] = value[start:]
            logger.info("Remove prediction weight for background class in %s. The shape changes from %s to %s.",
                        new, tuple(value.shape), tuple(new_weights[new].shape))
        elif new.startswith("cls_score."):
            logger.info("Move classification weights for background class in %s from index 0 to index %d.",
                        new, value.shape[0] - 1)
            value = _as_tensor(value)
            new_weights[new] = torch.cat([value[1:], value[:1]])
        else:
            new_weights[new] = value
    return new_weights, new_to_original


def _matches(model_key: str, ckpt_key: str) -> bool:
    """``ckpt_key`` is ``model_key`` or a whole-component suffix of it."""
    return model_key == ckpt_key or model_key.endswith("." + ckpt_key)


def align_and_update_state_dicts(
    model_state_dict: Mapping[str, Any], ckpt_state_dict: Mapping[str, Any], c2_conversion: bool = True
) -> dict[str, Any]:
    """``ckpt_state_dict`` with its keys renamed to the model keys they match (see module docstring).

    With ``c2_conversion`` (upstream's default) the checkpoint's keys are Caffe2 blob names and
    are converted first. Raises CheckpointError if one checkpoint key would fill two model keys.
    """
    if c2_conversion:
        ckpt_state_dict, original_keys = convert_c2_detectron_names(ckpt_state_dict)
    else:
        original_keys = {k: k for k in ckpt_state_dict}
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
    _log_matches(model_state_dict, {m: original_keys[c] for c, m in matched.items()})
    for k in ckpt_keys:
        if k not in matched:
            result[k] = ckpt_state_dict[k]
    return result


def _log_matches(model_state_dict: Mapping[str, Any], original_of: dict[str, str]) -> None:
    """upstream's table: one row per module whose weights came from blobs of one common prefix."""
    model_keys = sorted(original_of)
    common = _longest_common_prefix(model_keys)
    groups = _group_keys_by_module(model_keys, original_of)
    rows, done = [], set()
    for key in model_keys:
        if key in done:
            continue
        group = groups.get(key, [key])
        done.update(group)
        shapes = " ".join(str(tuple(model_state_dict[k].shape)).replace(" ", "") for k in group)
        if len(group) == 1:
            rows.append((key[len(common):], original_of[key], shapes))
        else:
            rows.append((_longest_common_prefix([k[len(common):] for k in group]) + "*",
                         _group_str([original_of[k] for k in group]), shapes))
    table = tabulate(rows, tablefmt="pipe", headers=["Names in Model", "Names in Checkpoint", "Shapes"])
    where = f"submodule {common[:-1]}" if common else "model"
    logger.info("Following weights matched with %s:\n%s", where, table)


def _group_keys_by_module(keys: list[str], original_names: dict[str, str]) -> dict[str, list[str]]:
    """Each key -> all keys of its (shortest) module prefix, when their original names share a prefix."""
    prefixes = sorted({k[: k.rfind(".") + 1] for k in keys if "." in k}, key=len)
    grouped: dict[str, list[str]] = {}
    for prefix in prefixes:
        group = [k for k in keys if k.startswith(prefix)]
        if len(group) <= 1 or not _longest_common_prefix_str([original_names[k] for k in group]):
            continue
        for k in group:
            grouped.setdefault(k, group)
    return grouped


def _longest_common_prefix(names: list[str]) -> str:
    """The common leading ``.``-components, with a trailing dot: ["abc.zfg", "abc.zef"] -> "abc."."""
    parts = [n.split(".") for n in names]
    first, last = min(parts), max(parts)
    common = []
    for a, b in zip(first, last):
        if a != b:
            break
        common.append(a)
    return ".".join(common) + "." if common else ""


def _longest_common_prefix_str(names: list[str]) -> str:
    """The common leading characters: ["classA", "classB", "clab"] -> "cla"."""
    first, last = min(names), max(names)  # the extremes differ first
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _group_str(names: list[str]) -> str:
    """["common1", "common2"] -> "common{1,2}" (and BatchNorm blobs as "bn_*")."""
    lcp = _longest_common_prefix_str(names)
    grouped = lcp + "{" + ",".join(x[len(lcp):] for x in names) + "}"
    grouped = grouped.replace("bn_{beta,running_mean,running_var,gamma}", "bn_*")
    return grouped.replace("bn_beta,bn_running_mean,bn_running_var,bn_gamma", "bn_*")
