"""modeling.mmdet_wrapper: importable without mmdet (configs then raise clearly); built modules
are wrapped with upstream's I/O conversions (checked on hand-made mmdet-style modules/results)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import MMDetBackbone, MMDetDetector
from detectron2_export.modeling.mmdet_wrapper import MMDetNotAvailableError
from detectron2_export.utils.training_only import TrainingOnlyError

needs_no_mmdet = pytest.mark.skipif(importlib.util.find_spec("mmdet") is not None, reason="mmdet is installed")


class _MMStyleBackbone(nn.Module):
    """Two stride-2 stages returning a tuple, like mmdet backbones; counts init_weights calls."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.stage2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.init_calls = 0

    def init_weights(self):
        self.init_calls += 1

    def forward(self, x):
        c1 = self.stage1(x)
        return (c1, self.stage2(c1))


class _MMStyleNeck(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_calls = 0

    def init_weights(self):
        self.init_calls += 1

    def forward(self, feats):
        return [f * 2 for f in feats]


@needs_no_mmdet
@pytest.mark.parametrize("cls", [MMDetBackbone, MMDetDetector])
def test_mmdet_configs_raise_a_clear_error_without_mmdet(cls):
    kwargs = {"output_shapes": []} if cls is MMDetBackbone else {"pixel_mean": [0.0], "pixel_std": [1.0]}
    with pytest.raises(MMDetNotAvailableError, match=rf"{cls.__name__}: got an mmdet config \('ResNet'\), which needs mmdet"):
        cls({"type": "ResNet", "depth": 50}, **kwargs)
    with pytest.raises(ImportError):  # also an ImportError, for `except ImportError` in scripts
        cls({"type": "ResNet"}, **kwargs)


def test_backbone_names_outputs_and_runs_the_neck():
    body, neck = _MMStyleBackbone(), _MMStyleNeck()
    shapes = [ShapeSpec(channels=4, stride=2), ShapeSpec(channels=8, stride=4)]
    wrapped = MMDetBackbone(body, neck, output_shapes=shapes, output_names=["p2", "p3"])
    assert body.init_calls == 1 and neck.init_calls == 1
    x = torch.randn(1, 3, 16, 16)
    out = wrapped(x)
    assert list(out) == ["p2", "p3"]
    c1, c2 = body(x)
    torch.testing.assert_close(out["p2"], c1 * 2)
    torch.testing.assert_close(out["p3"], c2 * 2)
    assert wrapped.output_shape() == {"p2": shapes[0], "p3": shapes[1]}
    assert list(MMDetBackbone(_MMStyleBackbone(), output_shapes=shapes).output_shape()) == ["out0", "out1"]
    with pytest.raises(ValueError, match=r"returned 2 outputs, expected 3"):
        MMDetBackbone(_MMStyleBackbone(), output_shapes=shapes + shapes[:1])(x)


class _MMStyleDetector(nn.Module):
    """Records what simple_test got; returns two classes of boxes and their masks, mmdet-style."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def init_weights(self):
        pass

    def simple_test(self, images, metas, rescale):
        self.calls.append((images, metas, rescale))
        boxes_cls0 = np.array([[1, 2, 3, 4, 0.9]], dtype=np.float32)
        boxes_cls1 = np.array([[5, 6, 7, 8, 0.8], [0, 0, 2, 2, 0.7]], dtype=np.float32)
        masks = [[np.ones((10, 12), bool)], [np.zeros((10, 12), bool), np.eye(10, 12, dtype=bool)]]
        return [([boxes_cls0, boxes_cls1], masks) for _ in metas]


def test_detector_inputs_and_outputs():
    det = _MMStyleDetector()
    model = MMDetDetector(det, size_divisibility=8, pixel_mean=[10.0, 20.0, 30.0], pixel_std=[2.0, 4.0, 5.0]).eval()
    image = torch.rand(3, 5, 6) * 255
    outputs = model([{"image": image, "height": 10, "width": 12}])
    images, metas, rescale = det.calls[0]
    assert rescale is True and images.shape == (1, 3, 8, 8)  # padded to multiples of 8
    mean, std = torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1), torch.tensor([2.0, 4.0, 5.0]).view(3, 1, 1)
    torch.testing.assert_close(images[0, :, :5, :6], (image - mean) / std)
    assert (images[0, :, 5:, :] == 0).all() and (images[0, :, :, 6:] == 0).all()
    meta = metas[0]
    assert meta["img_shape"] == (5, 6, 3) and meta["ori_shape"] == (10, 12, 3) and meta["pad_shape"] == (8, 8, 3)
    np.testing.assert_allclose(meta["scale_factor"], [0.5, 0.5, 0.5, 0.5])
    inst = outputs[0]["instances"]
    assert inst.image_size == (10, 12)
    torch.testing.assert_close(inst.pred_boxes.tensor, torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8], [0, 0, 2, 2]]))
    torch.testing.assert_close(inst.scores, torch.tensor([0.9, 0.8, 0.7]))
    assert inst.pred_classes.tolist() == [0, 1, 1] and inst.pred_classes.dtype == torch.int32
    assert inst.pred_masks.shape == (3, 10, 12) and inst.pred_masks[0].all() and not inst.pred_masks[1].any()
    # without height/width the output is in input pixels
    outputs = model([{"image": image}])
    assert det.calls[1][2] is False and det.calls[1][1][0]["scale_factor"] == 1.0
    assert outputs[0]["instances"].image_size == (5, 6)
    with pytest.raises(ValueError, match="some inputs have 'height'/'width' and some do not"):
        model([{"image": image}, {"image": image, "height": 5, "width": 6}])
    with pytest.raises(TrainingOnlyError, match="inference only; call .eval()"):
        model.train()([{"image": image}])
