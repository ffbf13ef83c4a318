"""Config versions, as ``detectron2.config.compat``: old YAML files keep loading.

detectron2 renamed config keys twice (``VERSION`` 0 -> 1 -> 2; the defaults are v2). A file of an
older version is merged by first *downgrading* the current config to that version (which only
has to recover the old names of the default keys), merging the file there, and *upgrading* the
result back to the latest version. Both directions are the same ordered lists of renames, one per
version step, so ``upgrade_config(downgrade_config(cfg, 0)) == cfg``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .config import CfgNode, has_dotted_key

__all__ = ["upgrade_config", "downgrade_config", "guess_version"]

logger = logging.getLogger(__name__)


def _latest_version() -> int:
    from .defaults import _C

    return _C.VERSION


def upgrade_config(cfg: CfgNode, to_version: int | None = None) -> CfgNode:
    """A copy of ``cfg`` (of any older version) brought up to ``to_version`` (default: the latest)."""
    cfg = cfg.clone()
    to_version = _latest_version() if to_version is None else to_version
    if cfg.VERSION > to_version:
        raise ConfigError(f"upgrade_config: VERSION={cfg.VERSION}, expected <= {to_version} (cannot upgrade "
                          f"from v{cfg.VERSION} to v{to_version})")
    for version in range(cfg.VERSION + 1, to_version + 1):
        _CONVERTERS[version].upgrade(cfg)
        cfg.VERSION = version
    return cfg


def downgrade_config(cfg: CfgNode, to_version: int) -> CfgNode:
    """A copy of ``cfg`` with the key names of the older ``to_version``.

    A general downgrade is not always possible (features differ between versions); its purpose is
    to recover an old version's defaults so that an old partial YAML file can be merged into them.
    """
    cfg = cfg.clone()
    if cfg.VERSION < to_version or to_version < 0:
        raise ConfigError(f"downgrade_config: to_version={to_version}, expected 0..{cfg.VERSION} (cannot "
                          f"downgrade from v{cfg.VERSION} to v{to_version})")
    for version in range(cfg.VERSION, to_version, -1):
        _CONVERTERS[version].downgrade(cfg)
        cfg.VERSION = version - 1
    return cfg


def guess_version(cfg: Mapping[str, Any], filename: str) -> int:
    """The version of a config file without ``VERSION``: 1 if it uses a v1-only key, else the latest."""
    # most v1 partial configs set MODEL.WEIGHT
    if has_dotted_key(cfg, "MODEL.WEIGHT") or has_dotted_key(cfg, "TEST.AUG_ON"):
        logger.warning("Config '%s' has no VERSION. Assuming it to be v1.", filename)
        return 1
    latest = _latest_version()
    logger.warning("Config '%s' has no VERSION. Assuming it to be compatible with latest v%d.", filename, latest)
    return latest


def _rename(cfg: CfgNode, old: str, new: str) -> None:
    """Move the value at dotted key ``old`` to ``new``; parents emptied by the move are removed."""
    *old_parents, old_leaf = old.split(".")
    *new_parents, new_leaf = new.split(".")
    node = cfg
    for part in old_parents:
        node = node[part]
    value = node[old_leaf]
    target = cfg
    for part in new_parents:
        if part not in target:
            target[part] = CfgNode()
        target = target[part]
    target[new_leaf] = value
    chain = [cfg]
    for part in old_parents:
        chain.append(chain[-1][part])
    del chain[-1][old_leaf]
    for parent, part in zip(reversed(chain[:-1]), reversed(old_parents)):
        if len(parent[part]) > 0:
            break
        del parent[part]


class _RenameConverter:
    """One version step: an ordered list of (old key, new key)."""

    RENAME: tuple[tuple[str, str], ...] = ()

    @classmethod
    def upgrade(cls, cfg: CfgNode) -> None:
        for old, new in cls.RENAME:
            _rename(cfg, old, new)

    @classmethod
    def downgrade(cls, cfg: CfgNode) -> None:
        for old, new in reversed(cls.RENAME):
            _rename(cfg, new, old)


class ConverterV1(_RenameConverter):
    """v0 -> v1."""

    RENAME = (("MODEL.RPN_HEAD.NAME", "MODEL.RPN.HEAD_NAME"),)


class ConverterV2(_RenameConverter):
    """v1 -> v2: inference thresholds get a _TEST suffix, test-time augmentation and panoptic
    combination get their own nodes, and anchors move to MODEL.ANCHOR_GENERATOR."""

    RENAME = (
        ("MODEL.WEIGHT", "MODEL.WEIGHTS"),
        ("MODEL.PANOPTIC_FPN.SEMANTIC_LOSS_SCALE", "MODEL.SEM_SEG_HEAD.LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.RPN_LOSS_SCALE", "MODEL.RPN.LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.INSTANCE_LOSS_SCALE", "MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT"),
        ("MODEL.PANOPTIC_FPN.COMBINE_ON", "MODEL.PANOPTIC_FPN.COMBINE.ENABLED"),
        ("MODEL.PANOPTIC_FPN.COMBINE_OVERLAP_THRESHOLD", "MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH"),
        ("MODEL.PANOPTIC_FPN.COMBINE_STUFF_AREA_LIMIT", "MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT"),
        ("MODEL.PANOPTIC_FPN.COMBINE_INSTANCES_CONFIDENCE_THRESHOLD",
         "MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH"),
        ("MODEL.ROI_HEADS.SCORE_THRESH", "MODEL.ROI_HEADS.SCORE_THRESH_TEST"),
        ("MODEL.ROI_HEADS.NMS", "MODEL.ROI_HEADS.NMS_THRESH_TEST"),
        ("MODEL.RETINANET.INFERENCE_SCORE_THRESHOLD", "MODEL.RETINANET.SCORE_THRESH_TEST"),
        ("MODEL.RETINANET.INFERENCE_TOPK_CANDIDATES", "MODEL.RETINANET.TOPK_CANDIDATES_TEST"),
        ("MODEL.RETINANET.INFERENCE_NMS_THRESHOLD", "MODEL.RETINANET.NMS_THRESH_TEST"),
        ("TEST.DETECTIONS_PER_IMG", "TEST.DETECTIONS_PER_IMAGE"),
        ("TEST.AUG_ON", "TEST.AUG.ENABLED"),
        ("TEST.AUG_MIN_SIZES", "TEST.AUG.MIN_SIZES"),
        ("TEST.AUG_MAX_SIZE", "TEST.AUG.MAX_SIZE"),
        ("TEST.AUG_FLIP", "TEST.AUG.FLIP"),
    )

    @classmethod
    def upgrade(cls, cfg: CfgNode) -> None:
        super().upgrade(cfg)
        # v1 had anchors under both RPN and RETINANET; the one of the model's head wins
        owner = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "RPN"
        other = "RPN" if owner == "RETINANET" else "RETINANET"
        _rename(cfg, f"MODEL.{owner}.ANCHOR_ASPECT_RATIOS", "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
        _rename(cfg, f"MODEL.{owner}.ANCHOR_SIZES", "MODEL.ANCHOR_GENERATOR.SIZES")
        del cfg.MODEL[other]["ANCHOR_SIZES"]
        del cfg.MODEL[other]["ANCHOR_ASPECT_RATIOS"]
        del cfg.MODEL.RETINANET["ANCHOR_STRIDES"]

    @classmethod
    def downgrade(cls, cfg: CfgNode) -> None:
        super().downgrade(cfg)
        _rename(cfg, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "MODEL.RPN.ANCHOR_ASPECT_RATIOS")
        _rename(cfg, "MODEL.ANCHOR_GENERATOR.SIZES", "MODEL.RPN.ANCHOR_SIZES")
        cfg.MODEL.RETINANET.ANCHOR_ASPECT_RATIOS = cfg.MODEL.RPN.ANCHOR_ASPECT_RATIOS
        cfg.MODEL.RETINANET.ANCHOR_SIZES = cfg.MODEL.RPN.ANCHOR_SIZES
        cfg.MODEL.RETINANET.ANCHOR_STRIDES = []  # not used by any version


_CONVERTERS: dict[int, type[_RenameConverter]] = {1: ConverterV1, 2: ConverterV2}
