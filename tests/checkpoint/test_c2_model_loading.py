"""align_and_update_state_dicts: Caffe2 / Detectron1 name conversion, suffix matching of keys."""

import json
import logging
import os

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.checkpoint import DetectionCheckpointer, align_and_update_state_dicts
from detectron2_export.checkpoint.c2_model_loading import (
    _longest_common_prefix_str,
    convert_basic_c2_names,
    convert_c2_detectron_names,
)
from detectron2_export.errors import CheckpointError

from .detectron1 import detectron1_blobs
from .helpers import write_pickle

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS_DIR = os.path.join(REPO_ROOT, "tests", "data", "model_keys")  # upstream's keys (../shared/models/keys)


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


def test_upstream_complex_model_with_default_c2_conversion():
    """upstream's test_complex_model_loaded: nested modules, c2_conversion left at its default."""
    torch.manual_seed(0)
    m = nn.Module()
    m.block1 = nn.Module()
    m.block1.layer1 = nn.Linear(2, 3)
    m.layer2 = nn.Linear(3, 2)
    m.res = nn.Module()
    m.res.layer2 = nn.Linear(3, 2)
    ckpt = {"layer1.weight": torch.rand(3, 2), "layer1.bias": torch.rand(3), "layer2.weight": torch.rand(2, 3),
            "layer2.bias": torch.rand(2), "res.layer2.weight": torch.rand(2, 3), "res.layer2.bias": torch.rand(2)}
    for model in (m, nn.DataParallel(m)):
        model.load_state_dict(align_and_update_state_dicts(model.state_dict(), ckpt))
        prefix = "module." if isinstance(model, nn.DataParallel) else ""
        for model_key, ckpt_key in (("block1.layer1", "layer1"), ("layer2", "layer2"), ("res.layer2", "res.layer2")):
            for p in ("weight", "bias"):
                assert torch.equal(model.state_dict()[f"{prefix}{model_key}.{p}"], ckpt[f"{ckpt_key}.{p}"])


def test_longest_common_prefix_str_as_upstream():
    assert _longest_common_prefix_str(["class", "dlaps_model"]) == ""
    assert _longest_common_prefix_str(["classA", "classB"]) == "class"
    assert _longest_common_prefix_str(["classA", "classB", "clab"]) == "cla"


@pytest.mark.parametrize("blob, name", [
    ("conv1_w", "stem.conv1.weight"),
    ("res_conv1_bn_s", "stem.conv1.norm.weight"),
    ("res_conv1_bn_b", "stem.conv1.norm.bias"),
    ("res2_0_branch1_w", "res2.0.shortcut.weight"),
    ("res2_0_branch2a_w", "res2.0.conv1.weight"),
    ("res3_3_branch2c_bn_riv", "res3.3.conv3.norm.running_var"),
    ("res4_5_branch2b_bn_rm", "res4.5.conv2.norm.running_mean"),
    ("res5_2_branch2b_gn_s", "res5.2.conv2.norm.weight"),
    ("fpn_inner_res5_2_sum_w", "fpn_lateral5.weight"),
    ("fpn_inner_res4_5_sum_lateral_b", "fpn_lateral4.bias"),
    ("fpn_inner_res3_3_sum_lateral_gn_s", "fpn_lateral3.norm.weight"),
    ("fpn_res2_2_sum_w", "fpn_output2.weight"),
    ("conv_rpn_fpn2_w", "proposal_generator.rpn_head.conv.weight"),
    ("rpn_cls_logits_fpn2_b", "proposal_generator.rpn_head.objectness_logits.bias"),
    ("rpn_bbox_pred_w", "proposal_generator.rpn_head.anchor_deltas.weight"),
    ("fc6_w", "box_head.fc1.weight"),
    ("fc7_b", "box_head.fc2.bias"),
    ("head_conv1_w", "box_head.conv1.weight"),
    ("head_conv1_gn_s", "box_head.conv1.norm.weight"),
    ("cls_score_w", "cls_score.weight"),
    ("bbox_pred_b", "bbox_pred.bias"),
    ("_[mask]_fcn1_w", "mask_head.mask_fcn1.weight"),
    ("conv5_mask_b", "mask_head.deconv.bias"),
    ("mask_fcn_logits_w", "mask_head.predictor.weight"),
    ("conv_fcn3_w", "roi_heads.keypoint_head.conv_fcn3.weight"),
    ("kps_score_lowres_b", "roi_heads.keypoint_head.score_lowres.bias"),
    ("pred_w", "linear.weight"),
])
def test_detectron1_blob_names(blob, name):
    """Detectron1 model-zoo blob names and the detectron2 names upstream gives them."""
    renamed, original = convert_c2_detectron_names({blob: torch.zeros(8, 2)})
    assert list(renamed) == [name] and original == {name: blob}


def test_convert_basic_c2_names_is_the_backbone_part():
    assert convert_basic_c2_names(["res_conv1_bn_s", "res2_1_branch2a_bn_b", "fc1000_w"]) == [
        "stem.conv1.norm.weight", "res2.1.conv1.norm.bias", "fc1000.weight"]


def test_predictor_class_layout():
    """Background: first row of cls_score moves last, first 4 box / 1 mask rows are dropped."""
    cls = torch.arange(4.0)[:, None].expand(4, 3)  # K=3 classes + background at 0
    box = torch.arange(16.0)
    mask = torch.arange(4.0).reshape(4, 1, 1, 1)
    out, _ = convert_c2_detectron_names(
        {"cls_score_w": cls, "bbox_pred_b": box, "mask_fcn_logits_w": mask, "cls_score_b": torch.arange(4.0)})
    assert torch.equal(out["cls_score.weight"][:, 0], torch.tensor([1.0, 2.0, 3.0, 0.0]))
    assert torch.equal(out["cls_score.bias"], torch.tensor([1.0, 2.0, 3.0, 0.0]))
    assert torch.equal(out["bbox_pred.bias"], torch.arange(4.0, 16.0))
    assert torch.equal(out["mask_head.predictor.weight"].flatten(), torch.tensor([1.0, 2.0, 3.0]))


def test_clashing_blob_names_are_an_error():
    with pytest.raises(CheckpointError, match="map to the same detectron2 name"):
        convert_c2_detectron_names({"res2_0_branch2a_w": t(1), "res2.0.conv1.weight": t(1)})


@pytest.mark.parametrize("config", ["mask_rcnn_R_50_FPN_3x", "mask_rcnn_R_50_C4_3x", "keypoint_rcnn_R_50_FPN_3x"])
def test_detectron1_state_dict_of_model_zoo_keys(config):
    """Every key of the model-zoo model gets its own blob from a hand-built Detectron1 dict.

    Model and blob tensors live on the meta device (only shapes; the same tensor object must
    arrive under the right key), except the predictors, whose values are checked.
    """
    with open(os.path.join(KEYS_DIR, f"{config}.keys.json")) as f:
        shapes = json.load(f)
    model_sd = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    predictors = ("cls_score", "bbox_pred", "mask_head.predictor")
    state = {k: (torch.randn(shape) if any(p in k for p in predictors) else torch.empty(shape, device="meta"))
             for k, shape in shapes.items()}
    blobs = detectron1_blobs(state)
    blobs["res2_0_branch2a_w_momentum"] = torch.empty(1, device="meta")  # solver state: not a weight
    loaded = align_and_update_state_dicts(model_sd, blobs)
    assert set(shapes) <= set(loaded)
    for key, value in state.items():
        if value.is_meta:
            assert loaded[key] is value, key
        else:
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)


def test_bundled_model_from_detectron1_blobs_loads_the_same_tensors(tmp_path):
    """The shapes Mask R-CNN's trained weights, saved as a Detectron1 {"blobs": ...} pickle (with
    solver momenta), load into the model exactly as from its detectron2 .pkl."""
    from detectron2_export.config import get_cfg
    from detectron2_export.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    reference = build_model(cfg).eval()
    DetectionCheckpointer(reference).load(os.path.join(REPO_ROOT, "models", "mask_rcnn_R_18_FPN_shapes.pkl"))
    blobs = {k: v.numpy() for k, v in detectron1_blobs(reference.state_dict()).items()}
    blobs.update({k + "_momentum": np.zeros(1, np.float32) for k in list(blobs)[:5]})
    path = write_pickle(tmp_path / "model_final.pkl", {"blobs": blobs, "cfg": "Detectron1 yaml"})

    torch.manual_seed(1)
    model = build_model(cfg).eval()
    checkpointer = DetectionCheckpointer(model)
    checkpointer.load(path)
    assert checkpointer.incompatible_keys.missing_keys == []
    assert checkpointer.incompatible_keys.unexpected_keys == []
    expected = reference.state_dict()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)
