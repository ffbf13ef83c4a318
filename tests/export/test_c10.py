"""Caffe2-compatible components of ``detectron2_export.export.c10`` (SPEC 3.5, 3.9)."""

from __future__ import annotations

import pytest
import torch

from detectron2_export.config import get_cfg
from detectron2_export.export.c10 import Caffe2Boxes, Caffe2RPN, InstancesList
from detectron2_export.layers import ShapeSpec
from detectron2_export.structures import Boxes, Instances, Keypoints


class TestCaffe2RPN:
    """As upstream's tests/export/test_c10.py: GenerateProposals only decodes with unit weights."""

    def test_unit_weights_accepted(self):
        cfg = get_cfg()
        cfg.MODEL.RPN.BBOX_REG_WEIGHTS = (1, 1, 1, 1, 1)
        rpn = Caffe2RPN(cfg, {"res4": ShapeSpec(channels=256, stride=4)})
        assert isinstance(rpn, Caffe2RPN)
        assert tuple(rpn.box2box_transform.weights) == (1, 1, 1, 1, 1)

    def test_non_unit_weights_rejected(self):
        cfg = get_cfg()
        cfg.MODEL.RPN.BBOX_REG_WEIGHTS = (10, 10, 5, 5, 1)
        with pytest.raises(AssertionError, match=r"MODEL\.RPN\.BBOX_REG_WEIGHTS=\(10, 10, 5, 5, 1\)"):
            Caffe2RPN(cfg, {"res4": ShapeSpec(channels=256, stride=4)})


class TestCaffe2Boxes:
    @pytest.mark.parametrize("columns", [4, 5, 6])
    def test_accepts_batch_index_columns(self, columns):
        t = torch.arange(3.0 * columns).reshape(3, columns)
        boxes = Caffe2Boxes(t)
        assert boxes.tensor is t
        assert len(boxes) == 3
        assert isinstance(boxes, Boxes)

    @pytest.mark.parametrize("shape", [(3, 3), (3, 7), (5,)])
    def test_rejects_other_shapes(self, shape):
        with pytest.raises(AssertionError):
            Caffe2Boxes(torch.zeros(shape))

    def test_cat_keeps_type_and_columns(self):
        a = Caffe2Boxes(torch.tensor([[0.0, 1, 2, 3, 4]]))
        b = Caffe2Boxes(torch.tensor([[1.0, 5, 6, 7, 8], [1.0, 9, 10, 11, 12]]))
        c = Caffe2Boxes.cat([a, b])
        assert type(c) is Caffe2Boxes
        assert torch.equal(c.tensor, torch.cat([a.tensor, b.tensor]))


def _two_image_list() -> InstancesList:
    # rows 0 and 2 belong to image 0, row 1 to image 1 (batch index in column 0 of the rois)
    rois = torch.tensor([[0.0, 1, 2, 3, 4], [1.0, 5, 6, 7, 8], [0.0, 9, 10, 11, 12]])
    return InstancesList(
        im_info=torch.tensor([[20.0, 30.0, 1.0], [40.0, 50.0, 1.0]]),
        indices=rois[:, 0],
        extra_fields={
            "proposal_boxes": Caffe2Boxes(rois),
            "objectness_logits": (torch.Tensor, torch.tensor([0.5, 0.25, 0.125])),
        },
    )


class TestInstancesList:
    def test_fields_and_length(self):
        il = _two_image_list()
        assert len(il) == 3
        assert il.has("proposal_boxes") and not il.has("scores")
        assert list(il.get_fields()) == ["proposal_boxes", "objectness_logits"]
        assert il.image_size is il.im_info

    def test_flatten_returns_tensors_in_field_order(self):
        il = _two_image_list()
        flat = il.flatten()
        assert len(flat) == 2
        assert flat[0] is il.proposal_boxes.tensor
        assert torch.equal(flat[1], torch.tensor([0.5, 0.25, 0.125]))

    def test_set_checks_length(self):
        il = _two_image_list()
        il.scores = torch.tensor([1.0, 2.0, 3.0])
        assert torch.equal(il.scores, torch.tensor([1.0, 2.0, 3.0]))
        with pytest.raises(AssertionError, match="length 2"):
            il.set("pred_classes", torch.tensor([1, 2]))

    def test_missing_field_is_attribute_error(self):
        with pytest.raises(AttributeError, match="pred_masks"):
            _two_image_list().pred_masks

    def test_to_d2_instances_list_splits_by_batch_index(self):
        il = _two_image_list()
        il.set("pred_keypoints", (Keypoints, torch.arange(3 * 2 * 3, dtype=torch.float32).reshape(3, 2, 3)))
        first, second = InstancesList.to_d2_instances_list(il)
        assert first.image_size == (20, 30) and second.image_size == (40, 50)
        # boxes drop the batch-index column
        assert torch.equal(first.proposal_boxes.tensor, torch.tensor([[1.0, 2, 3, 4], [9.0, 10, 11, 12]]))
        assert torch.equal(second.proposal_boxes.tensor, torch.tensor([[5.0, 6, 7, 8]]))
        assert type(first.proposal_boxes) is Boxes
        assert torch.equal(first.objectness_logits, torch.tensor([0.5, 0.125]))
        assert torch.equal(second.objectness_logits, torch.tensor([0.25]))
        assert isinstance(first.pred_keypoints, Keypoints)
        assert torch.equal(second.pred_keypoints.tensor, torch.arange(6.0, 12.0).reshape(1, 2, 3))

    def test_to_d2_instances_list_passes_instances_through(self):
        inst = [Instances((2, 3), scores=torch.tensor([1.0]))]
        assert InstancesList.to_d2_instances_list(inst) is inst

    def test_unknown_target_type_rejected(self):
        il = _two_image_list()
        il.set("weird", (dict, torch.zeros(3)))
        with pytest.raises(ValueError, match="target type"):
            InstancesList.to_d2_instances_list(il)
