"""Instances: field semantics, indexing, concatenation and errors (detectron2 behaviour)."""

import pytest
import torch

from detectron2_export.structures import Boxes, Instances


def _inst():
    inst = Instances((20, 30))
    inst.scores = torch.tensor([0.9, 0.5, 0.1])
    inst.pred_boxes = Boxes(torch.tensor([[0.0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]]))
    inst.names = ["a", "b", "c"]
    return inst


def test_fields_set_get_has_remove():
    inst = _inst()
    assert inst.image_size == (20, 30)
    assert len(inst) == 3
    assert inst.has("scores") and not inst.has("pred_classes")
    assert inst.get("names") == ["a", "b", "c"]
    assert list(inst.get_fields().keys()) == ["scores", "pred_boxes", "names"]
    inst.remove("names")
    assert not inst.has("names")
    inst._private = 5  # underscore attributes are not fields
    assert inst._private == 5 and "_private" not in inst.get_fields()
    with pytest.raises(AttributeError, match="Cannot find field 'pred_classes' in the given Instances!"):
        inst.pred_classes
    with pytest.raises(AssertionError, match="Adding a field of length 2 to a Instances of length 3"):
        inst.pred_classes = torch.tensor([1, 2])


def test_kwargs_constructor():
    inst = Instances((4, 5), scores=torch.ones(2), pred_classes=torch.tensor([3, 4]))
    assert inst.pred_classes.tolist() == [3, 4]


def test_empty_len_and_iter_raise():
    with pytest.raises(NotImplementedError, match="^Empty Instances does not support __len__!$"):
        len(Instances((1, 1)))
    with pytest.raises(NotImplementedError, match="not iterable"):
        iter(_inst())


def test_indexing():
    inst = _inst()
    one = inst[1]
    assert len(one) == 1 and one.scores.tolist() == [0.5] and one.names == ["b"]
    assert one.pred_boxes.tensor.tolist() == [[1, 1, 2, 2]]
    assert inst[-1].scores.tolist() == pytest.approx([0.1])
    with pytest.raises(IndexError, match="Instances index out of range!"):
        inst[3]
    with pytest.raises(IndexError):
        inst[-4]
    assert inst[1:].scores.tolist() == pytest.approx([0.5, 0.1])
    del inst.get_fields()["names"]  # lists cannot take a bool mask
    masked = inst[inst.scores > 0.3]
    assert len(masked) == 2 and masked.pred_boxes.tensor[:, 0].tolist() == [0, 1]
    assert masked.image_size == (20, 30)
    assert inst[torch.tensor([2, 0])].scores.tolist() == pytest.approx([0.1, 0.9])


def test_cat():
    a, b = _inst(), _inst()[:1]
    c = Instances.cat([a, b])
    assert len(c) == 4
    assert c.scores.tolist() == pytest.approx([0.9, 0.5, 0.1, 0.9])
    assert isinstance(c.pred_boxes, Boxes) and c.pred_boxes.tensor.shape == (4, 4)
    assert c.names == ["a", "b", "c", "a"]
    assert Instances.cat([a]) is a
    with pytest.raises(AssertionError):
        other = Instances((1, 1), scores=torch.ones(1), pred_boxes=Boxes(torch.ones(1, 4)), names=["x"])
        Instances.cat([a, other])
    bad = Instances((20, 30), thing=_Sized())
    with pytest.raises(ValueError, match="Unsupported type"):
        Instances.cat([bad, bad])


class _Sized:
    def __len__(self):
        return 1


def test_to_and_str():
    inst = _inst().to("cpu")
    assert inst.scores.device.type == "cpu" and inst.names == ["a", "b", "c"]
    small = Instances((7, 8), scores=torch.tensor([1.0]))
    assert str(small) == (
        "Instances(num_instances=1, image_height=7, image_width=8, fields=[scores: tensor([1.])])"
    )
    assert repr(small) == str(small)
