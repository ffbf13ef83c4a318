"""utils.testing (detectron2's test helpers) against hand cases and upstream's documented behaviour."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from detectron2_export.data.datasets.paths import bundled_datasets_dir
from detectron2_export.export import scripting_with_instances
from detectron2_export.structures import Boxes, Instances
from detectron2_export.utils import testing
from detectron2_export.utils.testing import (
    assert_instances_allclose,
    convert_scripted_instances,
    get_sample_coco_image,
    random_boxes,
    reload_script_model,
)

SHAPES_IMAGE = os.path.join(bundled_datasets_dir(), "shapes", "val", "00000.jpg")  # shapes_val's first image


def test_upstream_names_import():
    names = ["get_model_no_weights", "random_boxes", "get_sample_coco_image", "convert_scripted_instances",
             "assert_instances_allclose", "reload_script_model"]
    assert [n for n in names if not hasattr(testing, n)] == [] and set(names) <= set(testing.__all__)


def test_random_boxes_are_valid_xyxy():
    torch.manual_seed(0)
    boxes = random_boxes(1000, max_coord=200)
    assert boxes.shape == (1000, 4) and boxes.dtype == torch.float32
    assert (boxes[:, :2] >= 1).all() and (boxes[:, :2] <= 100).all()  # x0, y0 in [1, max_coord / 2]
    assert (boxes[:, 2:] >= boxes[:, :2] + 1).all() and (boxes[:, 2:] <= 200).all()


def test_sample_image_is_the_bundled_shapes_image_in_bgr(monkeypatch, tmp_path):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))  # no coco/ there: the shapes fallback
    expected = np.asarray(Image.open(SHAPES_IMAGE).convert("RGB"))[:, :, ::-1]
    image = get_sample_coco_image(tensor=False)
    np.testing.assert_array_equal(image, expected)
    chw = get_sample_coco_image()
    assert chw.shape == (3, 374, 281) and chw.dtype == torch.uint8 and chw.is_contiguous()
    np.testing.assert_array_equal(chw.permute(1, 2, 0).numpy(), expected)


def _instances(boxes: Tensor, scores: Tensor, classes: Tensor, size=(20, 30)) -> Instances:
    return Instances(size, pred_boxes=Boxes(boxes), scores=scores, pred_classes=classes)


def test_assert_instances_allclose_tolerances():
    boxes = torch.tensor([[1.0, 2.0, 50.0, 60.0]])
    scores, classes = torch.tensor([0.5]), torch.tensor([3])
    a = _instances(boxes, scores, classes)
    assert_instances_allclose(a, _instances(boxes + 9e-4, scores * (1 + 9e-6), classes))  # within 100*rtol, rtol
    with pytest.raises(AssertionError, match="Field pred_boxes differs too much"):
        assert_instances_allclose(a, _instances(boxes + 2e-3, scores, classes))
    with pytest.raises(AssertionError, match="Two Instances are different! Field scores differs too much"):
        assert_instances_allclose(a, _instances(boxes, scores + 1e-5, classes))
    with pytest.raises(AssertionError, match="^mine: Field pred_classes is different"):
        assert_instances_allclose(a, _instances(boxes, scores, classes + 1), msg="mine:")
    with pytest.raises(AssertionError, match=r"image_size is \(20, 30\) vs. \(20, 31\)"):
        assert_instances_allclose(a, _instances(boxes, scores, classes, size=(20, 31)))
    with pytest.raises(AssertionError, match=r"Fields are \['pred_boxes', 'pred_classes', 'scores'\] vs"):
        assert_instances_allclose(a, Instances((20, 30), pred_boxes=Boxes(boxes), scores=scores))
    sized = _instances(boxes, scores, classes, size=(torch.tensor(20), torch.tensor(30)))
    assert_instances_allclose(a, sized, size_as_tensor=True)
    with pytest.raises(ValueError, match="Don't know how to compare type <class 'list'>"):
        assert_instances_allclose(Instances((1, 1), x=[1]), Instances((1, 1), x=[1]))


class _MakeInstances(nn.Module):
    def forward(self, x: Tensor) -> Instances:
        ret = Instances((4, 5))
        ret.pred_boxes = Boxes(x)
        ret.scores = x[:, 0] / 10
        return ret


def test_scripted_instances_convert_and_compare():
    fields = {"pred_boxes": Boxes, "scores": Tensor, "pred_classes": Tensor}
    scripted = reload_script_model(scripting_with_instances(_MakeInstances().eval(), fields))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 2.0, 2.0]])
    out = scripted(x)
    converted = convert_scripted_instances(out)
    assert isinstance(converted, Instances) and converted.image_size == (4, 5)
    assert sorted(converted.get_fields()) == ["pred_boxes", "scores"]  # pred_classes never set
    torch.testing.assert_close(converted.scores, torch.tensor([0.1, 0.0]), rtol=0, atol=0)
    assert_instances_allclose(out, _MakeInstances()(x))


def test_get_model_no_weights():
    from detectron2_export.modeling.meta_arch import RetinaNet

    torch.manual_seed(0)
    model = testing.get_model_no_weights("COCO-Detection/retinanet_R_50_FPN_1x.yaml")
    assert isinstance(model, RetinaNet) and model.training
    assert next(model.parameters()).device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert model.head.cls_score.out_channels == 9 * 80  # 9 anchors x 80 COCO classes
