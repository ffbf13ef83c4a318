"""align_and_update_state_dicts: suffix matching of checkpoint keys to model keys."""

import logging

import pytest
import torch

from detectron2_export.checkpoint import align_and_update_state_dicts
from detectron2_export.errors import CheckpointError


def t(*shape):
    return torch.zeros(shape)


def test_longest_suffix_wins_and_unmatched_keys_are_kept():
    model = {"backbone.res2.conv.weight": t(2), "backbone.stem.conv.weight": t(3), "head.fc.bias": t(4)}
    ckpt = {"res2.conv.weight": torch.ones(2), "conv.weight": torch.ones(3) * 2, "fc.bias": torch.ones(4) * 3,
            "unused.thing": t(1)}
    out = align_and_update_state_dicts(model, ckpt, c2_conversion=False)
    # res2.conv.weight is the longest match of backbone.res2.conv.weight; conv.weight of the stem key
    assert torch.equal(out["backbone.res2.conv.weight"], torch.ones(2))
    assert torch.equal(out["backbone.stem.conv.weight"], torch.ones(3) * 2)
    assert torch.equal(out["head.fc.bias"], torch.ones(4) * 3)
    assert set(out) == {"backbone.res2.conv.weight", "backbone.stem.conv.weight", "head.fc.bias", "unused.thing"}


def test_suffix_must_start_at_a_dot():
    out = align_and_update_state_dicts({"a.xweight": t(1)}, {"weight": t(1)}, c2_conversion=False)
    assert "a.xweight" not in out


def test_shape_mismatch_is_skipped(caplog):
    with caplog.at_level(logging.WARNING, logger="detectron2_export.checkpoint"):
        out = align_and_update_state_dicts({"m.w": t(2), "m.b": t(1)}, {"w": t(3), "b": t(1)}, c2_conversion=False)
    assert "m.w" not in out and "m.b" in out
    assert "Shape of w in checkpoint is (3,), while shape of m.w in model is (2,)" in caplog.text


def test_one_checkpoint_key_for_two_model_keys_is_an_error():
    with pytest.raises(CheckpointError, match="matches two model keys"):
        align_and_update_state_dicts({"a.w": t(1), "b.w": t(1)}, {"w": t(1)}, c2_conversion=False)


def test_caffe2_conversion_is_not_supported():
    with pytest.raises(CheckpointError, match="c2_conversion=True"):
        align_and_update_state_dicts({"a.w": t(1)}, {"a_w": t(1)})
