"""DetectionCheckpointer: formats, key reports, shape mismatches, unsafe and broken files."""

import logging
import os
import pickle
import uuid

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.errors import CheckpointError

from .helpers import Small, assert_state_equals, distinct_state, write_pickle

LOGGER = "detectron2_export.checkpoint"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Small()


def test_model_zoo_pkl(model, tmp_path, caplog):
    state = distinct_state(model)
    path = write_pickle(tmp_path / "zoo.pkl", {"model": state, "__author__": "Detectron2 Model Zoo"})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        rest = DetectionCheckpointer(model).load(path)
    assert_state_equals(model, state)
    assert rest == {"__author__": "Detectron2 Model Zoo"}
    assert "Reading a file from 'Detectron2 Model Zoo'" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_plain_pickled_state_dict_protocol2_big_endian(model, tmp_path):
    """Python-2-era pickles: protocol 2 (bytes via _codecs.encode) and non-native byte order."""
    state = {k: v.astype(v.dtype.newbyteorder(">")) for k, v in distinct_state(model).items()}
    path = write_pickle(tmp_path / "plain.pkl", state, protocol=2)
    DetectionCheckpointer(model).load(path)
    assert_state_equals(model, state)
    assert model.conv.weight.dtype == torch.float32


@pytest.mark.parametrize("wrapped", [True, False])
@pytest.mark.parametrize("zipped", [True, False])
def test_pth_with_and_without_model_key(model, tmp_path, wrapped, zipped):
    state = {k: torch.from_numpy(v) for k, v in distinct_state(model).items()}
    path = str(tmp_path / "w.pth")
    torch.save({"model": state, "iteration": 7} if wrapped else state, path, _use_new_zipfile_serialization=zipped)
    rest = DetectionCheckpointer(model).load(path)
    assert_state_equals(model, state)
    assert rest == ({"iteration": 7} if wrapped else {})


def test_dataparallel_prefix_is_stripped(model, tmp_path):
    state = distinct_state(model)
    path = write_pickle(tmp_path / "dp.pkl", {"model": {"module." + k: v for k, v in state.items()}})
    DetectionCheckpointer(model).load(path)
    assert_state_equals(model, state)


def test_missing_and_unexpected_keys_are_logged_grouped(model, tmp_path, caplog):
    state = distinct_state(model)
    initial_head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("head.")}
    partial = {k: v for k, v in state.items() if not k.startswith("head.")}
    partial["extra.layer.weight"] = np.zeros(3, np.float32)
    partial["extra.layer.bias"] = np.zeros(3, np.float32)
    partial["proposal_generator.anchor_generator.cell_anchors.0"] = np.zeros((3, 4), np.float32)
    path = write_pickle(tmp_path / "partial.pkl", {"model": partial, "__author__": "test"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DetectionCheckpointer(model).load(path)
    assert "Some model parameters or buffers are not found in the checkpoint:\n  head.0.{bias, weight}" in caplog.text
    assert ("The checkpoint state_dict contains keys that are not used by the model:\n"
            "  extra.layer.{bias, weight}") in caplog.text
    assert "cell_anchors" not in caplog.text  # old non-persistent buffers are not reported
    assert_state_equals(model, state, keys=[k for k in state if not k.startswith("head.")])
    for k, v in initial_head.items():  # missing weights keep their initial values
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)


def test_shape_mismatch_is_skipped_with_warning(model, tmp_path, caplog):
    state = distinct_state(model)
    state["head.0.weight"] = np.ones((5, 4), np.float32)  # model: (2, 4), e.g. another class count
    before = model.head[0].weight.detach().clone()
    path = write_pickle(tmp_path / "mismatch.pkl", {"model": state, "__author__": "test"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DetectionCheckpointer(model).load(path)
    assert ("Skip loading parameter 'head.0.weight' to the model due to incompatible shapes: "
            "(5, 4) in the checkpoint but (2, 4) in the model!") in caplog.text
    assert "head.0.weight" in caplog.text.split("not found in the checkpoint:")[-1]  # reported missing too
    torch.testing.assert_close(model.head[0].weight.detach(), before, rtol=0, atol=0)
    assert_state_equals(model, state, keys=[k for k in state if k != "head.0.weight"])


def test_shared_parameters_are_not_reported_missing(tmp_path, caplog):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = self.a  # same module under two names: state_dict has a.* and b.*

    model = Shared()
    state = {"a.weight": np.full((2, 2), 3.0, np.float32), "a.bias": np.full(2, 4.0, np.float32)}
    path = write_pickle(tmp_path / "shared.pkl", {"model": state})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        DetectionCheckpointer(model).load(path)
    assert "not found in the checkpoint" not in caplog.text
    assert torch.equal(model.b.weight, torch.full((2, 2), 3.0))


def test_matching_heuristics_by_suffix(tmp_path):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = Small()

    model = Wrapped()
    state = distinct_state(model.backbone)
    path = write_pickle(tmp_path / "bare.pkl", {"model": state, "__author__": "x", "matching_heuristics": True})
    DetectionCheckpointer(model).load(path)
    assert_state_equals(model.backbone, state)


def test_empty_path_loads_nothing(model, caplog):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert DetectionCheckpointer(model).load("") == {}
    assert "No checkpoint found. Initializing model from scratch" in caplog.text
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


# ------------------------------------------------------------------------------------ bad files
def test_missing_file_names_the_path(model, tmp_path):
    missing = str(tmp_path / "nope" / "model_final.pth")
    with pytest.raises(CheckpointError, match=r"nope/model_final\.pth.*does not exist"):
        DetectionCheckpointer(model).load(missing)


def test_directory_is_not_a_checkpoint(model, tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        DetectionCheckpointer(model).load(str(tmp_path))


@pytest.mark.parametrize("content", [b"\x80\x04garbage!", b"", b"not a pickle at all"])
def test_corrupt_pickle(model, tmp_path, content):
    path = tmp_path / "corrupt.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="corrupt"):
        DetectionCheckpointer(model).load(str(path))


def test_truncated_pickle(model, tmp_path):
    good = write_pickle(tmp_path / "good.pkl", {"model": distinct_state(model)})
    data = open(good, "rb").read()
    path = tmp_path / "truncated.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        DetectionCheckpointer(model).load(str(path))


def test_corrupt_torch_zip(model, tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt torch checkpoint"):
        DetectionCheckpointer(model).load(str(path))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_malicious_pickle_is_refused_and_not_run(model, tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / f"evil{suffix}", {"model": {}, "__author__": _Evil(marker)})
    with pytest.raises(CheckpointError, match=r"refusing to unpickle.*(posix|os)\.system"):
        DetectionCheckpointer(model).load(path)
    assert not marker.exists()


def test_pth_needing_code_is_refused_and_not_run(model, tmp_path):
    marker = tmp_path / "pwned"
    path = str(tmp_path / "evil.pth")
    torch.save({"model": {}, "extra": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="needs arbitrary code to unpickle"):
        DetectionCheckpointer(model).load(path)
    assert not marker.exists()


class _Stem(nn.Module):
    """stem.conv1 (+ .norm): the names Caffe2's conv1_w / res_conv1_bn_* convert to."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv1 = nn.Conv2d(3, 4, 3)
        self.stem.conv1.norm = nn.BatchNorm2d(4)


@pytest.mark.parametrize("detectron1", [True, False])
def test_caffe2_blob_dicts_load_with_name_conversion(tmp_path, detectron1, caplog):
    """A Detectron1 {"blobs": ...} pickle or an ImageNet blob dict, as upstream's model zoos ship them."""
    model = _Stem()
    rng = np.random.default_rng(0)
    blobs = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in (
        ("conv1_w", (4, 3, 3, 3)), ("conv1_b", (4,)), ("res_conv1_bn_s", (4,)), ("res_conv1_bn_b", (4,)),
        ("res_conv1_bn_rm", (4,)), ("res_conv1_bn_riv", (4,)), ("fc1000_w", (10, 4)))}
    blobs["conv1_w_momentum"] = np.zeros((4, 3, 3, 3), np.float32)
    path = write_pickle(tmp_path / "c2.pkl", {"blobs": blobs} if detectron1 else blobs)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        checkpointer = DetectionCheckpointer(model)
        checkpointer.load(path)
    expected = {"stem.conv1.weight": "conv1_w", "stem.conv1.bias": "conv1_b", "stem.conv1.norm.weight": "res_conv1_bn_s",
                "stem.conv1.norm.bias": "res_conv1_bn_b", "stem.conv1.norm.running_mean": "res_conv1_bn_rm",
                "stem.conv1.norm.running_var": "res_conv1_bn_riv"}
    assert_state_equals(model, {k: blobs[v] for k, v in expected.items()})
    assert checkpointer.incompatible_keys.unexpected_keys == ["fc1000.weight"]  # momentum blobs dropped
    assert "Renaming Caffe2 weights" in caplog.text


def test_query_suffix_turns_on_matching_heuristics(tmp_path):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = Small()

    state = {k: torch.from_numpy(v) for k, v in distinct_state(Small()).items()}
    path = str(tmp_path / "bare.pth")
    torch.save(state, path)
    plain = Wrapped()
    DetectionCheckpointer(plain).load(path)  # no heuristics: nothing matches
    assert not torch.equal(plain.backbone.conv.weight, state["conv.weight"])
    model = Wrapped()
    DetectionCheckpointer(model).load(path + "?matching_heuristics=True")
    assert_state_equals(model.backbone, state)
    with pytest.raises(CheckpointError, match="query 'foo=1', expected none or 'matching_heuristics=True'"):
        DetectionCheckpointer(model).load(path + "?foo=1")


def test_custom_path_handler_is_used(model, tmp_path):
    """A handler registered on utils.file_io.PathManager resolves its scheme for the checkpointer."""
    from detectron2_export.utils.file_io import PathHandler, PathManager

    prefix = f"teststore{uuid.uuid4().hex[:8]}://"
    asked = []

    class StoreHandler(PathHandler):
        def _get_supported_prefixes(self):
            return [prefix]

        def _get_local_path(self, path, **kwargs):
            asked.append(path)
            return str(tmp_path / path[len(prefix):])

    PathManager.register_handler(StoreHandler())
    state = distinct_state(model)
    write_pickle(tmp_path / "zoo.pkl", {"model": state, "__author__": "store"})
    DetectionCheckpointer(model).load(prefix + "zoo.pkl")
    assert_state_equals(model, state)
    assert asked == [prefix + "zoo.pkl"]


def test_non_array_values_are_refused(model, tmp_path):
    path = write_pickle(tmp_path / "bad_value.pkl", {"model": {"conv.weight": [1.0, 2.0]}})
    with pytest.raises(CheckpointError, match=r"model\['conv.weight'\]=list, expected a numpy array"):
        DetectionCheckpointer(model).load(path)


def test_non_dict_pickle_is_refused(model, tmp_path):
    with pytest.raises(CheckpointError, match="expected a dict"):
        DetectionCheckpointer(model).load(write_pickle(tmp_path / "list.pkl", [1, 2, 3]))


# ---------------------------------------------------------------------------------- save/resume
def test_save_then_resume_or_load(model, tmp_path):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    saver = DetectionCheckpointer(model, save_dir=str(tmp_path / "out"), optimizer=optimizer)
    saver.save("model_0000009", iteration=9)
    assert saver.has_checkpoint()
    assert saver.get_checkpoint_file() == str(tmp_path / "out" / "model_0000009.pth")
    assert saver.get_all_checkpoint_files() == [str(tmp_path / "out" / "model_0000009.pth")]
    assert sorted(os.listdir(tmp_path / "out")) == ["last_checkpoint", "model_0000009.pth"]  # no temp files left

    other_path = write_pickle(tmp_path / "other.pkl", {"model": distinct_state(model, offset=-50.0)})
    fresh = Small()
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1)
    loader = DetectionCheckpointer(fresh, save_dir=str(tmp_path / "out"), optimizer=fresh_opt)

    rest = loader.resume_or_load(other_path, resume=True)  # last_checkpoint wins, optimizer restored
    assert rest == {"iteration": 9}
    assert_state_equals(fresh, {k: v.numpy() for k, v in model.state_dict().items()})
    assert fresh_opt.param_groups[0]["lr"] == 0.5

    rest = loader.resume_or_load(other_path, resume=False)  # only the weights of `path`
    assert_state_equals(fresh, distinct_state(model, offset=-50.0))


def test_save_without_save_dir_writes_nothing(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    DetectionCheckpointer(model).save("model_final")
    assert os.listdir(tmp_path) == []


def test_dataparallel_model_is_unwrapped(model, tmp_path):
    state = distinct_state(model)
    path = write_pickle(tmp_path / "zoo.pkl", {"model": state})
    DetectionCheckpointer(nn.DataParallel(model)).load(path)
    assert_state_equals(model, state)


def test_bundled_shapes_checkpoint_unpickles_safely():
    from detectron2_export.checkpoint import load_checkpoint_file

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    checkpoint = load_checkpoint_file(os.path.join(root, "models", "mask_rcnn_R_18_FPN_shapes.pkl"))
    state = checkpoint["model"]
    assert "__author__" in checkpoint
    assert state["backbone.bottom_up.stem.conv1.weight"].shape == (64, 3, 7, 7)
    assert state["backbone.bottom_up.stem.conv1.weight"].dtype == np.float32
    assert "roi_heads.box_predictor.cls_score.weight" in state
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (4, 256)  # 3 classes + background
