"""A model in training mode given to the exporters (upstream: Caffe2Tracer exports an eval-mode deep
copy; TracingAdapter traces the model as given; scripting requires eval mode)."""

from __future__ import annotations

import pytest
import torch

from detectron2_export.export import Caffe2Tracer, TracingAdapter, scripting_with_instances

from .test_api import _image, tiny_rcnn, tiny_rcnn_cfg


def _training_flags(model: torch.nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


@pytest.fixture(scope="module")
def cfg_model_inputs():
    cfg = tiny_rcnn_cfg()
    return cfg, tiny_rcnn(cfg), [{"image": _image(96, 128, 0)}]


def _export_files(tmp_path, name, cfg, model, inputs) -> dict[str, bytes]:
    out = tmp_path / name
    Caffe2Tracer(cfg, model, inputs).export_caffe2().save_protobuf(str(out))
    return {f: (out / f).read_bytes() for f in ("model.pb", "model_init.pb", "model.pbtxt")}


def test_caffe2_tracer_training_model_exports_same_files_as_eval(tmp_path, cfg_model_inputs):
    cfg, model, inputs = cfg_model_inputs
    eval_files = _export_files(tmp_path, "eval", cfg, model.eval(), inputs)
    # a mixed state, as a user's half-frozen model may have: the whole tree but one child training
    model.train()
    model.backbone.eval()
    flags = _training_flags(model)
    try:
        train_files = _export_files(tmp_path, "train", cfg, model, inputs)
        assert _training_flags(model) == flags  # the caller's model is left exactly as it was
    finally:
        model.eval()
    for name, data in eval_files.items():
        assert train_files[name] == data, f"{name} differs between the training and eval-mode exports"
    # RPN.POST_NMS_TOPK_TRAIN (2000) would have been baked in had the copy stayed in training mode
    assert cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN != cfg.MODEL.RPN.POST_NMS_TOPK_TEST
    assert b'name: "post_nms_topN"\n    i: 50\n' in train_files["model.pbtxt"]


def test_caffe2_tracer_traceable_model_is_an_eval_copy(cfg_model_inputs):
    cfg, model, inputs = cfg_model_inputs
    model.train()
    try:
        tracer = Caffe2Tracer(cfg, model, inputs)
        assert model.training
        assert not any(m.training for m in tracer.traceable_model.modules())
        wrapped = tracer.traceable_model._wrapped_model
        assert wrapped is not model
        assert wrapped.backbone.conv1.weight is not model.backbone.conv1.weight
    finally:
        model.eval()


def test_tracing_adapter_keeps_the_mode_given_as_upstream():
    # upstream's TracingAdapter neither rejects nor changes the mode: a Dropout in training mode
    # stays random inside the adapter, and eval mode makes it the identity
    model = torch.nn.Sequential(torch.nn.Dropout(p=0.5)).train()
    x = torch.ones(1000)
    adapter = TracingAdapter(model, x)
    assert adapter.model.training
    out = adapter(*adapter.flattened_inputs)[0]
    assert 0 < int((out == 0).sum()) < 1000
    model.eval()
    torch.testing.assert_close(adapter(*adapter.flattened_inputs)[0], x, rtol=0, atol=0)


def test_scripting_with_instances_requires_eval_mode_as_upstream():
    model = torch.nn.Linear(2, 2).train()
    with pytest.raises(AssertionError, match="only support exporting models in evaluation mode"):
        scripting_with_instances(model, {})
    assert model.training
