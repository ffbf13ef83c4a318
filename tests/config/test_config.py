"""CfgNode: _BASE_ inheritance, overrides, dump, and the errors for bad files and keys."""

import os
import textwrap

import pytest

from detectron2_export.config import CfgNode, ConfigFileNotFoundError, ConfigKeyError, configurable, get_cfg
from detectron2_export.errors import ConfigError


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def chain(tmp_path):
    """grand.yaml <- bases/parent.yaml <- sub/child.yaml, with _BASE_ paths relative to each file."""
    _write(tmp_path / "grand.yaml", """
        MODEL:
          RESNETS:
            DEPTH: 101
            NUM_GROUPS: 32
          MASK_ON: True
        INPUT:
          MIN_SIZE_TEST: 600
    """)
    _write(tmp_path / "bases" / "parent.yaml", """
        _BASE_: "../grand.yaml"
        MODEL:
          RESNETS:
            DEPTH: 50
        INPUT:
          MAX_SIZE_TEST: 1000
    """)
    return _write(tmp_path / "sub" / "child.yaml", """
        _BASE_: "../bases/parent.yaml"
        MODEL:
          RESNETS:
            NUM_GROUPS: 2
        SOLVER:
          STEPS: (10, 20)
    """)


def test_base_chain_merges_key_by_key(chain, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path / "bases")  # _BASE_ is relative to the including file, not the cwd
    cfg = get_cfg()
    cfg.merge_from_file(chain)
    assert cfg.MODEL.RESNETS.DEPTH == 50  # parent overrides grand
    assert cfg.MODEL.RESNETS.NUM_GROUPS == 2  # child overrides grand
    assert cfg.MODEL.MASK_ON is True  # only in grand
    assert (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST) == (600, 1000)
    assert cfg.SOLVER.STEPS == (10, 20)  # YAML string "(10, 20)" -> tuple, as yacs decodes it
    assert cfg.MODEL.RESNETS.WIDTH_PER_GROUP == 64  # untouched default
    assert "_BASE_" not in cfg


def test_load_yaml_with_base_returns_merged_dict(chain):
    merged = CfgNode.load_yaml_with_base(chain)
    assert merged == {
        "MODEL": {"RESNETS": {"DEPTH": 50, "NUM_GROUPS": 2}, "MASK_ON": True},
        "INPUT": {"MIN_SIZE_TEST": 600, "MAX_SIZE_TEST": 1000},
        "SOLVER": {"STEPS": "(10, 20)"},
    }


def test_merge_from_list_decodes_values():
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.WEIGHTS", "models/x.pkl", "MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "288",
                         "DATASETS.TEST", "('shapes_val',)", "MODEL.PIXEL_STD", "[57.375, 57.12, 58.395]"])
    assert cfg.MODEL.WEIGHTS == "models/x.pkl"
    assert cfg.MODEL.DEVICE == "cpu"
    assert cfg.INPUT.MIN_SIZE_TEST == 288
    assert cfg.DATASETS.TEST == ("shapes_val",)
    assert cfg.MODEL.PIXEL_STD == [57.375, 57.12, 58.395]


def _normalized(value):
    """yacs coerces only the outer list<->tuple; compare nested sequences by content."""
    if isinstance(value, dict):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalized(v) for v in value]
    return value


def test_dump_round_trips(tmp_path):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.RESNETS.DEPTH", "18", "DATASETS.TEST", "('a', 'b')"])
    path = tmp_path / "dumped.yaml"
    path.write_text(cfg.dump())
    again = get_cfg()
    again.merge_from_file(str(path))
    assert _normalized(again) == _normalized(cfg)
    assert again.DATASETS.TEST == ("a", "b")


def test_keys_added_before_merging_are_accepted(tmp_path):
    """What add_export_config does: add a node, then merge a file that sets it."""
    cfg = get_cfg()
    cfg.EXPORT_CAFFE2 = CfgNode()
    cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT = False
    cfg.merge_from_file(_write(tmp_path / "a.yaml", "EXPORT_CAFFE2:\n  USE_HEATMAP_MAX_KEYPOINT: True\n"))
    assert cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT is True


def test_new_allowed_node_accepts_new_keys(tmp_path):
    cfg = get_cfg()
    cfg.EXTRA = CfgNode(new_allowed=True)
    cfg.merge_from_file(_write(tmp_path / "a.yaml", "EXTRA:\n  ANYTHING: 3\n"))
    assert cfg.EXTRA.ANYTHING == 3


def test_frozen_config_refuses_changes():
    cfg = get_cfg()
    cfg.freeze()
    with pytest.raises(AttributeError):
        cfg.MODEL.DEVICE = "cpu"


def test_configurable_is_reexported():
    from detectron2_export.config.configurable import configurable as original

    assert configurable is original


# ------------------------------------------------------------------------------------------ errors
def test_missing_file_names_the_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigFileNotFoundError, match="nope.yaml") as info:
        get_cfg().merge_from_file(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ConfigError)


def test_missing_base_names_base_and_including_file(tmp_path):
    child = _write(tmp_path / "child.yaml", '_BASE_: "gone/base.yaml"\n')
    with pytest.raises(ConfigFileNotFoundError) as info:
        get_cfg().merge_from_file(child)
    message = str(info.value)
    assert os.path.join("gone", "base.yaml") in message and "child.yaml" in message


def test_unknown_key_in_file_names_file_key_and_suggestion(tmp_path):
    path = _write(tmp_path / "typo.yaml", "MODEL:\n  RESNETS:\n    DEPTHH: 50\n")
    with pytest.raises(ConfigKeyError) as info:
        get_cfg().merge_from_file(path)
    message = str(info.value)
    assert "typo.yaml" in message and "MODEL.RESNETS.DEPTHH" in message and "MODEL.RESNETS.DEPTH" in message
    assert isinstance(info.value, KeyError)  # what yacs raises, for existing except clauses
    assert not message.startswith("'")  # not KeyError's repr()


def test_unknown_key_is_reported_with_the_file_that_sets_it(tmp_path):
    _write(tmp_path / "base.yaml", "SOLVER:\n  NOT_A_KEY: 1\nMODEL:\n  ALSO_NOT: 2\n")
    child = _write(tmp_path / "child.yaml", '_BASE_: "base.yaml"\nMODEL:\n  ALSO_NOT: 3\n')
    with pytest.raises(ConfigKeyError) as info:
        get_cfg().merge_from_file(child)
    lines = str(info.value).splitlines()
    assert len(lines) == 2  # every unknown key, not just the first
    assert any(line.startswith(str(tmp_path / "base.yaml") + ": SOLVER.NOT_A_KEY is not a config key")
               for line in lines)
    assert any(line.startswith(str(tmp_path / "child.yaml") + ": MODEL.ALSO_NOT is not a config key")
               for line in lines)


def test_unknown_key_in_list_is_keyerror_and_assertionerror():
    with pytest.raises(ConfigKeyError, match="MODEL.RESNET.DEPTH") as info:
        get_cfg().merge_from_list(["MODEL.RESNET.DEPTH", "50"])
    assert isinstance(info.value, AssertionError) and isinstance(info.value, KeyError)


def test_odd_override_list():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        get_cfg().merge_from_list(["MODEL.DEVICE"])


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("bad_type.yaml", 'MODEL:\n  RESNETS:\n    DEPTH: "fifty"\n', r"bad_type\.yaml: .*MODEL\.RESNETS\.DEPTH"),
        ("broken.yaml", "MODEL: [unclosed\n", "broken.yaml: not valid YAML"),
        ("v3.yaml", "VERSION: 3\n", "VERSION=3, expected an int from 0 to 2"),
    ],
    ids=["type_mismatch_names_file_and_key", "invalid_yaml_names_file", "newer_config_version_is_refused"],
)
def test_bad_file_is_a_config_error(tmp_path, name, text, match):
    path = _write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=match):
        get_cfg().merge_from_file(path)


def test_circular_base_is_an_error(tmp_path):
    _write(tmp_path / "a.yaml", '_BASE_: "b.yaml"\n')
    b = _write(tmp_path / "b.yaml", '_BASE_: "a.yaml"\n')
    with pytest.raises(ConfigError, match="circular"):
        get_cfg().merge_from_file(b)


@pytest.mark.parametrize(
    "tag, command",
    [
        ("!!python/object/apply:os.system", "touch {marker}"),
        ("!!python/object/apply:eval", "__import__('os').system('touch {marker}')"),
    ],
    ids=["os_system", "eval"],
)
def test_python_object_tags_are_refused_and_never_executed(tmp_path, tag, command):
    marker = tmp_path / "pwned"
    path = _write(tmp_path / "evil.yaml", f'OUTPUT_DIR: {tag} ["{command.format(marker=marker)}"]\n')
    with pytest.raises(ConfigError, match="evil.yaml"):
        get_cfg().merge_from_file(path)
    assert not marker.exists()
