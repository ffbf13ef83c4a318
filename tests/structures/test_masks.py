"""BitMasks and ROIMasks on hand-made masks."""

import warnings

import pytest
import torch

from detectron2_export.structures import BitMasks, Boxes, ROIMasks


def _bitmasks():
    t = torch.zeros(3, 8, 8, dtype=torch.bool)
    t[0, :, :4] = True  # left half
    t[1, 1:4, 2:6] = True  # rows 1..3, columns 2..5
    return BitMasks(t)  # mask 2 empty


def test_basics():
    m = _bitmasks()
    assert len(m) == 3 and m.image_size == (8, 8)
    assert m.nonempty().tolist() == [True, True, False]
    assert m[1].tensor.shape == (1, 8, 8)
    assert m[m.nonempty()].tensor.shape == (2, 8, 8)
    assert BitMasks.cat([m, m[0]]).tensor.shape == (4, 8, 8)
    assert BitMasks(torch.ones(1, 2, 2, dtype=torch.uint8)).tensor.dtype == torch.bool
    assert repr(m) == "BitMasks(num_instances=3)"
    assert len(list(m)) == 3


def test_get_bounding_boxes():
    boxes = _bitmasks().get_bounding_boxes()
    assert isinstance(boxes, Boxes)
    # x1/y1 are exclusive (last set pixel + 1); an empty mask gives a zero box
    assert boxes.tensor.tolist() == [[0, 0, 4, 8], [2, 1, 6, 4], [0, 0, 0, 0]]


def test_crop_and_resize_by_hand():
    m = _bitmasks()[:1]
    # whole image -> 4x4 with 2 samples per bin at 0..7: the left two columns are inside
    out = m.crop_and_resize(torch.tensor([[0.0, 0, 8, 8]]), 4)
    assert out.dtype == torch.bool
    assert out[0].tolist() == [[True, True, False, False]] * 4
    # box x in [2, 6]: one sample per bin, at x = 2, 3, 4, 5
    out = m.crop_and_resize(torch.tensor([[2.0, 0, 6, 8]]), 4)
    assert out[0].tolist() == [[True, True, False, False]] * 4


def test_roimasks_to_bitmasks_pastes_into_box():
    roi = ROIMasks(torch.ones(1, 2, 2))
    bm = roi.to_bitmasks(Boxes(torch.tensor([[2.0, 1, 6, 5]])), 8, 8)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[1:5, 2:6] = True  # every pixel whose centre is inside the box
    assert isinstance(bm, BitMasks) and torch.equal(bm.tensor[0], expected)


def test_roimasks_to_bitmasks_traced_with_tensor_sizes():
    masks = torch.rand(2, 4, 4)
    boxes = torch.tensor([[1.0, 1, 5, 6], [0, 2, 3, 9]])

    def paste(m, b, image):
        h, w = image.shape[-2:]
        return ROIMasks(m).to_bitmasks(Boxes(b), h, w).tensor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(paste, (masks, boxes, torch.zeros(3, 10, 12)), check_trace=False)
    out = traced(masks, boxes, torch.zeros(3, 14, 9))
    assert out.shape == (2, 14, 9)
    assert torch.equal(out, paste(masks, boxes, torch.zeros(3, 14, 9)))


def test_roimasks_indexing():
    roi = ROIMasks(torch.rand(3, 4, 4))
    assert len(roi) == 3 and roi[1:].tensor.shape == (2, 4, 4)
    assert roi.to("cpu").device == torch.device("cpu")
    with pytest.raises(ValueError, match="returns a tensor with shape"):
        roi[0]
    with pytest.raises(ValueError, match="3 dimension"):
        ROIMasks(torch.rand(4, 4))
