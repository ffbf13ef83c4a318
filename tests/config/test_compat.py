"""Config versions: upgrade_config / downgrade_config and the automatic upgrade of old files."""

import logging
import textwrap

import pytest

from detectron2_export.config import ConfigKeyError, downgrade_config, get_cfg, upgrade_config
from detectron2_export.errors import ConfigError

# upstream's test files (tests/config/test_config.py)
_V0_CFG = """
MODEL:
  RPN_HEAD:
    NAME: "TEST"
VERSION: 0
"""

_V1_CFG = """
MODEL:
  WEIGHT: "/path/to/weight"
"""


def _merge(tmp_path, cfg, text, name="old.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    cfg.merge_from_file(str(path))
    return cfg


def test_upgrade_downgrade_consistency():
    cfg = get_cfg()
    cfg.USER_CUSTOM = 1  # a custom key is preserved
    assert upgrade_config(downgrade_config(cfg, to_version=0)) == cfg
    assert upgrade_config(downgrade_config(cfg, to_version=1)) == cfg


def test_downgrade_to_v1_recovers_the_old_names():
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = "w.pkl"
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.3
    old = downgrade_config(cfg, to_version=1)
    assert old.VERSION == 1 and cfg.VERSION == 2  # a copy
    assert old.MODEL.WEIGHT == "w.pkl" and "WEIGHTS" not in old.MODEL
    assert old.MODEL.ROI_HEADS.SCORE_THRESH == 0.3 and "SCORE_THRESH_TEST" not in old.MODEL.ROI_HEADS
    assert old.TEST.AUG_ON is False and old.TEST.AUG_MIN_SIZES == cfg.TEST.AUG.MIN_SIZES
    assert "AUG" not in old.TEST  # emptied by the renames, so removed
    assert old.TEST.DETECTIONS_PER_IMG == 100
    # anchors go back to both heads; ANCHOR_GENERATOR keeps its other keys
    assert old.MODEL.RPN.ANCHOR_SIZES == [[32, 64, 128, 256, 512]] == old.MODEL.RETINANET.ANCHOR_SIZES
    assert old.MODEL.RPN.ANCHOR_ASPECT_RATIOS == [[0.5, 1.0, 2.0]] == old.MODEL.RETINANET.ANCHOR_ASPECT_RATIOS
    assert old.MODEL.RETINANET.ANCHOR_STRIDES == []
    assert "SIZES" not in old.MODEL.ANCHOR_GENERATOR and old.MODEL.ANCHOR_GENERATOR.NAME == "DefaultAnchorGenerator"
    assert old.MODEL.PANOPTIC_FPN.COMBINE_ON is True and old.MODEL.PANOPTIC_FPN.COMBINE_OVERLAP_THRESHOLD == 0.5


def test_downgrade_to_v0():
    old = downgrade_config(get_cfg(), to_version=0)
    assert old.VERSION == 0
    assert old.MODEL.RPN_HEAD.NAME == "StandardRPNHead" and "HEAD_NAME" not in old.MODEL.RPN


def test_auto_upgrade_of_a_v0_file(tmp_path, caplog):
    cfg = get_cfg()
    cfg.USER_CUSTOM = 1
    with caplog.at_level(logging.WARNING, logger="detectron2_export.config"):
        _merge(tmp_path, cfg, _V0_CFG)
    assert cfg.MODEL.RPN.HEAD_NAME == "TEST"
    assert cfg.VERSION == 2 and cfg.USER_CUSTOM == 1
    assert "Loading an old v0 config file" in caplog.text and "upgrading to v2" in caplog.text


def test_guess_v1(tmp_path, caplog):
    cfg = get_cfg()
    with caplog.at_level(logging.WARNING, logger="detectron2_export.config"):
        _merge(tmp_path, cfg, _V1_CFG)
    assert cfg.VERSION == 2
    assert cfg.MODEL.WEIGHTS == "/path/to/weight" and "WEIGHT" not in cfg.MODEL
    assert "has no VERSION. Assuming it to be v1" in caplog.text


def test_v1_file_renames_and_anchor_owner(tmp_path):
    cfg = _merge(tmp_path, get_cfg(), """
        VERSION: 1
        MODEL:
          ROI_HEADS:
            SCORE_THRESH: 0.25
            NMS: 0.4
          RPN:
            ANCHOR_SIZES: [[16, 32]]
        TEST:
          AUG_ON: True
          AUG_MIN_SIZES: [400, 500]
          DETECTIONS_PER_IMG: 50
    """)
    expected = get_cfg()
    expected.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.25
    expected.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.4
    expected.MODEL.ANCHOR_GENERATOR.SIZES = [[16, 32]]
    expected.TEST.AUG.ENABLED = True
    expected.TEST.AUG.MIN_SIZES = (400, 500)  # yacs keeps the default's type
    expected.TEST.DETECTIONS_PER_IMAGE = 50
    assert cfg == expected


def test_v1_retinanet_takes_its_own_anchors(tmp_path):
    cfg = _merge(tmp_path, get_cfg(), """
        VERSION: 1
        MODEL:
          META_ARCHITECTURE: "RetinaNet"
          RPN:
            ANCHOR_SIZES: [[1]]
          RETINANET:
            ANCHOR_SIZES: [[32, 40, 50]]
            INFERENCE_SCORE_THRESHOLD: 0.1
    """)
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[32, 40, 50]]
    assert cfg.MODEL.RETINANET.SCORE_THRESH_TEST == 0.1
    assert "ANCHOR_SIZES" not in cfg.MODEL.RPN and "ANCHOR_STRIDES" not in cfg.MODEL.RETINANET


def test_unknown_key_in_an_old_file_names_file_and_key(tmp_path):
    with pytest.raises(ConfigKeyError, match=r"old\.yaml: MODEL\.ROI_HEADS\.SCORE_THRESHOLD is not a config key"):
        _merge(tmp_path, get_cfg(), "VERSION: 1\nMODEL:\n  ROI_HEADS:\n    SCORE_THRESHOLD: 0.2\n")


def test_bad_version_arguments(tmp_path):
    with pytest.raises(ConfigError, match="cannot upgrade from v2 to v1"):
        upgrade_config(get_cfg(), to_version=1)
    with pytest.raises(ConfigError, match="cannot downgrade from v2 to v3"):
        downgrade_config(get_cfg(), to_version=3)
    old = downgrade_config(get_cfg(), to_version=1)
    with pytest.raises(ConfigError, match="files merge only into a config of the latest version"):
        _merge(tmp_path, old, "VERSION: 1\n")
