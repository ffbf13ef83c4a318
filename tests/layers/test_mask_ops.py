"""paste_masks_in_image: hand-computed pastes, thresholds, and a per-pixel bilinear reference."""

import math

import pytest
import torch

from detectron2_export.errors import ResourceLimitError
from detectron2_export.layers import mask_ops, paste_masks_in_image
from detectron2_export.structures import Boxes


def test_ones_mask_covers_pixels_with_centre_in_box():
    # A 2x2 mask of ones sampled (zero padding outside) at a pixel centre c gives, along x,
    # 1 - dist(u, [0, 1]) with u = (c - x0) / w * 2 - 0.5: >= 0.5 exactly when x0 <= c <= x1.
    masks = torch.ones(1, 2, 2)
    out = paste_masks_in_image(masks, torch.tensor([[2.0, 1.0, 6.0, 5.0]]), (8, 8))
    expected = torch.zeros(1, 8, 8, dtype=torch.bool)
    expected[0, 1:5, 2:6] = True
    assert out.dtype == torch.bool and torch.equal(out, expected)
    # Boxes are accepted too
    as_boxes = Boxes(torch.tensor([[2.0, 1.0, 6.0, 5.0]]))
    assert torch.equal(paste_masks_in_image(masks, as_boxes, (8, 8)), expected)


def test_threshold_behaviour():
    masks = torch.ones(1, 2, 2)
    box = torch.tensor([[2.0, 1.0, 6.0, 5.0]])
    # border pixels (centre 0.5 px inside a 4 px box) get 0.75 along that axis; corners 0.75^2
    strict = paste_masks_in_image(masks, box, (8, 8), threshold=0.6)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[1:5, 2:6] = True
    expected[1, 2] = expected[1, 5] = expected[4, 2] = expected[4, 5] = False
    assert torch.equal(strict[0], expected)
    soft = paste_masks_in_image(masks, box, (8, 8), threshold=-1)
    assert soft.dtype == torch.uint8
    assert soft[0, 1, 2].item() == int(0.5625 * 255)  # corner
    assert soft[0, 1, 3].item() == int(0.75 * 255)  # top edge
    assert soft[0, 2, 3].item() == 255  # inside
    assert soft[0, 0, 3].item() == int(0.25 * 255)  # one row above the box
    assert soft[0, 7, 7].item() == 0


def _reference_paste(mask, box, h, w):
    """Per pixel: grid_sample(align_corners=False, zero padding) written as explicit bilinear."""
    M = mask.shape[-1]
    x0, y0, x1, y1 = box.tolist()
    out = torch.zeros(h, w)
    m = mask.tolist()

    def value(r, c):
        return m[r][c] if 0 <= r < M and 0 <= c < M else 0.0

    for i in range(h):
        v = ((i + 0.5 - y0) / (y1 - y0)) * M - 0.5
        for j in range(w):
            u = ((j + 0.5 - x0) / (x1 - x0)) * M - 0.5
            r0, c0 = math.floor(v), math.floor(u)
            fr, fc = v - r0, u - c0
            out[i, j] = (
                (1 - fr) * (1 - fc) * value(r0, c0)
                + (1 - fr) * fc * value(r0, c0 + 1)
                + fr * (1 - fc) * value(r0 + 1, c0)
                + fr * fc * value(r0 + 1, c0 + 1)
            )
    return out


def test_random_masks_match_reference():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 5, 5, generator=g)
    boxes = torch.tensor([[1.3, 0.2, 7.9, 5.5], [-2.0, 3.0, 4.0, 14.0], [6.0, 6.0, 20.0, 9.5]])
    out = paste_masks_in_image(masks, boxes, (12, 10), threshold=0.5)
    for k in range(3):
        ref = _reference_paste(masks[k], boxes[k], 12, 10)
        near = (ref - 0.5).abs() < 1e-5  # pixels on the threshold are allowed either way
        assert torch.equal(out[k][~near], (ref >= 0.5)[~near])


def test_skip_empty_region_equals_full_image_paste():
    g = torch.Generator().manual_seed(1)
    masks = torch.rand(2, 1, 6, 6, generator=g)
    boxes = torch.tensor([[3.2, 2.7, 9.1, 8.0], [0.0, 0.0, 2.5, 3.5]])
    for k in range(2):
        part, (ys, xs) = mask_ops._do_paste_mask(masks[k : k + 1], boxes[k : k + 1], 11, 13, skip_empty=True)
        full, rest = mask_ops._do_paste_mask(masks[k : k + 1], boxes[k : k + 1], 11, 13, skip_empty=False)
        assert rest == ()
        torch.testing.assert_close(part, full[:, ys, xs])
        outside = torch.ones(11, 13, dtype=torch.bool)
        outside[ys, xs] = False
        assert (full[0][outside] == 0).all()  # nothing is lost outside the pasted region


def test_empty_and_constants():
    out = paste_masks_in_image(torch.zeros(0, 4, 4), torch.zeros(0, 4), (5, 6))
    assert out.shape == (0, 5, 6) and out.dtype == torch.uint8
    assert mask_ops.BYTES_PER_FLOAT == 4 and mask_ops.GPU_MEM_LIMIT == 1024**3
    with pytest.raises(AssertionError, match="square"):
        paste_masks_in_image(torch.zeros(1, 4, 3), torch.zeros(1, 4), (5, 6))


def test_pad_masks_and_scale_boxes_hand():
    masks = torch.arange(1.0, 5.0).reshape(1, 2, 2)
    padded, scale = mask_ops.pad_masks(masks, 1)
    assert scale == 2.0  # (2 + 2 * 1) / 2
    expected = torch.zeros(1, 4, 4)
    expected[0, 1:3, 1:3] = masks[0]
    torch.testing.assert_close(padded, expected, rtol=0, atol=0)
    boxes = torch.tensor([[0.0, 0.0, 4.0, 2.0], [10.0, 20.0, 12.0, 21.0]])
    torch.testing.assert_close(
        mask_ops.scale_boxes(boxes, 1.5), torch.tensor([[-1.0, -0.5, 5.0, 2.5], [9.5, 19.75, 12.5, 21.25]])
    )


def test_padded_masks_in_scaled_boxes_paste_the_same():
    # a mask padded by p cells in a box grown by (M + 2p) / M samples the same mask positions.
    # Cells of at most 2 pixels: the bilinear fringe (half a cell) stays inside the one-pixel
    # margin the CPU paste computes around the unpadded box
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(3, 7, 7, generator=g)
    boxes = torch.tensor([[3.0, 4.0, 15.0, 15.0], [0.5, 0.5, 9.0, 13.0], [12.0, 2.0, 25.0, 9.5]])
    padded, scale = mask_ops.pad_masks(masks, 2)
    original = paste_masks_in_image(masks, boxes, (32, 32), threshold=-1).int()
    via_padding = paste_masks_in_image(padded, mask_ops.scale_boxes(boxes, scale), (32, 32), threshold=-1).int()
    assert (original - via_padding).abs().max().item() <= 1  # uint8 rounding of equal floats


def test_paste_mask_in_image_old_hand():
    ones = torch.ones(2, 2)
    # the box truncates to (1, 2, 4, 3): 4 x 2 pixels, inclusive of x1 and y1
    out = mask_ops.paste_mask_in_image_old(ones, torch.tensor([1.7, 2.2, 4.9, 3.1]), 6, 6, 0.5)
    expected = torch.zeros(6, 6, dtype=torch.uint8)
    expected[2:4, 1:5] = 1
    assert out.dtype == torch.uint8 and torch.equal(out, expected)
    # a box of exactly M x M pixels keeps the mask as is; the part left of the image is cut off
    mask = torch.tensor([[0.2, 0.9], [0.7, 0.1]])
    out = mask_ops.paste_mask_in_image_old(mask, torch.tensor([-1.0, 3.0, 0.0, 4.0]), 6, 6, 0.5)
    expected = torch.zeros(6, 6, dtype=torch.uint8)
    expected[3, 0] = 1  # mask[0, 1] = 0.9; mask[1, 1] = 0.1 stays 0
    assert torch.equal(out, expected)
    soft = mask_ops.paste_mask_in_image_old(mask, torch.tensor([0.0, 0.0, 1.0, 1.0]), 3, 3, -1)
    assert soft[:2, :2].tolist() == [[int(0.2 * 255), int(0.9 * 255)], [int(0.7 * 255), int(0.1 * 255)]]


def test_pasted_result_above_the_limit_is_refused_before_allocation(monkeypatch):
    """Issue 15: 100 masks of an 8000x8000 image need 6.4 GB; refused with the size, nothing allocated."""
    masks, boxes = torch.rand(100, 28, 28), torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(100, 1)
    with pytest.raises(ResourceLimitError, match=r"100 masks of 8000x8000 need 6\.40 GB, more than .*LIMIT=4\.29 GB"):
        paste_masks_in_image(masks, boxes, (8000, 8000))
    monkeypatch.setattr(mask_ops, "PASTED_MASKS_MEMORY_LIMIT", 100 * 64 * 64)  # exactly the result's size
    assert paste_masks_in_image(masks, boxes, (64, 64)).shape == (100, 64, 64)
    with pytest.raises(ResourceLimitError):
        paste_masks_in_image(masks, boxes, (64, 65))


def test_paste_masks_still_scripts():
    scripted = torch.jit.script(paste_masks_in_image)
    masks, boxes = torch.rand(3, 28, 28), torch.tensor([[1.0, 2.0, 20.0, 30.0]]).repeat(3, 1)
    torch.testing.assert_close(scripted(masks, boxes, (40, 50), 0.5), paste_masks_in_image(masks, boxes, (40, 50)))
