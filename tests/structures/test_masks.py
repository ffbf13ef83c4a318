"""BitMasks and ROIMasks on hand-made masks; polygons rasterized (hand-drawn rectangles)."""

import warnings

import numpy as np
import pytest
import torch

from detectron2_export.structures import BitMasks, Boxes, PolygonMasks, ROIMasks, polygons_to_bitmask
from detectron2_export.structures.masks import polygon_area, rasterize_polygons_within_box
from detectron2_export.utils.training_only import TrainingOnlyError


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


# --- polygons (COCO's ground-truth format), rasterized with pycocotools ---------------------------

RECT = np.array([1.0, 1, 5, 1, 5, 4, 1, 4])  # the rectangle [1, 5] x [1, 4]: pixels x 1..4, y 1..3


def test_polygons_to_bitmask_hand():
    expected = np.zeros((6, 7), dtype=bool)
    expected[1:4, 1:5] = True
    mask = polygons_to_bitmask([RECT], 6, 7)
    assert mask.dtype == bool and mask.shape == (6, 7)
    np.testing.assert_array_equal(mask, expected)
    # the union of two polygons; nothing for none
    other = np.array([5.0, 4, 7, 4, 7, 6, 5, 6])
    expected[4:6, 5:7] = True
    np.testing.assert_array_equal(polygons_to_bitmask([RECT, other], 6, 7), expected)
    np.testing.assert_array_equal(polygons_to_bitmask([], 3, 2), np.zeros((3, 2), dtype=bool))


def test_polygon_area_and_rasterize_within_box():
    assert polygon_area(np.array([0.0, 4, 0]), np.array([0.0, 0, 3])) == 6.0
    assert polygon_area(RECT[0::2], RECT[1::2]) == 12.0
    box = np.array([2.0, 2.0, 6.0, 6.0])
    left_half = np.array([2.0, 2, 4, 2, 4, 6, 2, 6])
    mask = rasterize_polygons_within_box([left_half], box, 8)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:, :4] = True  # x in [2, 4] of [2, 6] -> the left 4 of 8 columns
    assert torch.equal(mask, expected)
    assert left_half[0] == 2.0  # the input polygon is not modified
    # a flat box (height 0 counts as 0.1) scales y by 80: only the first rows are covered
    flat = rasterize_polygons_within_box([np.array([0.0, 0, 8, 0, 8, 0.05, 0, 0.05])], np.array([0.0, 0, 8, 0]), 8)
    assert flat[:4].all() and not flat[4:].any()


def test_bitmasks_from_polygons_and_training_only_polygon_masks():
    bitmasks = BitMasks.from_polygon_masks([[RECT], [RECT + 1]], 8, 8)
    assert bitmasks.tensor.shape == (2, 8, 8)
    assert np.array_equal(bitmasks.tensor[1].numpy(), polygons_to_bitmask([RECT + 1], 8, 8))
    torch.testing.assert_close(bitmasks.get_bounding_boxes().tensor, torch.tensor([[1.0, 1, 5, 4], [2, 2, 6, 5]]))
    assert BitMasks.from_polygon_masks([], 4, 5).tensor.shape == (0, 4, 5)
    with pytest.raises(TrainingOnlyError, match=r"structures\.masks\.PolygonMasks is training-only"):
        PolygonMasks([[RECT]])
