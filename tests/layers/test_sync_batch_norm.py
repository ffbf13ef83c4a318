"""SyncBN / NaiveSyncBN at inference: BatchNorm2d semantics and upstream's state_dict keys,
frozen SyncBN as built by detectron2, and checkpoints without ``num_batches_tracked``."""

import logging
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.layers import FrozenBatchNorm2d, NaiveSyncBatchNorm, get_norm

BN_KEYS = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


def _randomize(module):
    for m in module.modules():
        if hasattr(m, "running_mean"):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
            if getattr(m, "num_batches_tracked", None) is not None:
                m.num_batches_tracked.fill_(7)
    return module


@pytest.mark.parametrize("norm", ["SyncBN", "naiveSyncBN", "naiveSyncBN_N"])
def test_sync_norms_are_batch_norm_at_inference(norm):
    torch.manual_seed(0)
    layer = _randomize(get_norm(norm, 3)).eval()
    assert list(layer.state_dict()) == BN_KEYS
    x = torch.randn(2, 3, 4, 5)
    # hand-written inference batch norm: (x - mean) / sqrt(var + eps) * weight + bias
    expected = (x - layer.running_mean[:, None, None]) / torch.sqrt(layer.running_var[:, None, None] + 1e-5)
    expected = expected * layer.weight[:, None, None] + layer.bias[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_naive_sync_bn_single_process_training_is_batch_norm():
    torch.manual_seed(0)
    naive, ref = NaiveSyncBatchNorm(3, stats_mode="N"), nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(naive.train()(x), ref.train()(x))
    torch.testing.assert_close(naive.running_var, ref.running_var)


def test_frozen_sync_bn_keeps_num_batches_tracked():
    """detectron2's frozen stages turn SyncBN into buffers-only FrozenBN that still has
    num_batches_tracked (Misc/mask_rcnn_R_50_FPN_3x_syncbn); BatchNorm2d loses it, as upstream."""
    torch.manual_seed(0)
    model = _randomize(nn.Sequential(get_norm("SyncBN", 3), get_norm("BN", 3), get_norm("naiveSyncBN", 3))).eval()
    x = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        before = [m(x) for m in model]
    FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    assert all(isinstance(m, FrozenBatchNorm2d) for m in model)
    assert list(model[0].state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert model[0].num_batches_tracked.item() == 7
    assert list(model[1].state_dict()) == list(model[2].state_dict()) == BN_KEYS[:4]
    assert list(model.parameters()) == []  # weight and bias are buffers now
    for m, b in zip(model, before):
        torch.testing.assert_close(m(x), b, rtol=1e-5, atol=1e-6)


def _model():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), get_norm("SyncBN", 4), get_norm("naiveSyncBN", 4), get_norm("SyncBN", 4))
    FrozenBatchNorm2d.convert_frozen_batchnorm(model[3])
    return model


def _without(state_dict, word):
    out = OrderedDict((k, v) for k, v in state_dict.items() if word not in k)
    out._metadata = state_dict._metadata
    return out


@pytest.mark.parametrize("fmt", ["pkl", "pth"])
def test_checkpoint_without_num_batches_tracked_loads_without_warning(tmp_path, caplog, fmt):
    torch.manual_seed(0)
    src = _randomize(_model())
    state = _without(src.state_dict(), "num_batches_tracked")
    assert len(state) == len(src.state_dict()) - 3
    path = tmp_path / f"model.{fmt}"
    if fmt == "pkl":  # model-zoo format: numpy arrays, no torch metadata
        with open(path, "wb") as f:
            pickle.dump({"model": {k: v.numpy() for k, v in state.items()}, "__author__": "test"}, f)
    else:
        torch.save({"model": state}, path)
    dst = _model()
    with caplog.at_level(logging.WARNING):
        DetectionCheckpointer(dst).load(str(path))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    for key, value in state.items():
        torch.testing.assert_close(dst.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_missing_running_stats_still_warns(tmp_path, caplog):
    """The silence is about num_batches_tracked only: a missing statistic is reported."""
    src = _model()
    path = tmp_path / "model.pth"
    torch.save({"model": _without(src.state_dict(), "1.running_mean")}, path)
    with caplog.at_level(logging.WARNING):
        DetectionCheckpointer(_model()).load(str(path))
    assert any("1.running_mean" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_zoo_syncbn_model_keys():
    """Spot check of the Misc syncbn zoo config (the full check is tests/model_zoo)."""
    from detectron2_export import model_zoo
    from detectron2_export.modeling import build_model

    cfg = model_zoo.get_config("Misc/mask_rcnn_R_50_FPN_3x_syncbn.yaml")
    cfg.MODEL.DEVICE = "meta"
    model = build_model(cfg)
    stem_norm = model.backbone.bottom_up.stem.conv1.norm
    assert isinstance(stem_norm, FrozenBatchNorm2d) and "num_batches_tracked" in stem_norm.state_dict()
    assert isinstance(model.backbone.bottom_up.res3[0].conv1.norm, nn.SyncBatchNorm)
    assert isinstance(model.roi_heads.box_head.conv1.norm, nn.SyncBatchNorm)
