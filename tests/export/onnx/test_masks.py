"""``masks.select_class_masks`` and ``masks.paste_masks``: mask outputs of a whole batch in the graph,
against detectron2's ``mask_rcnn_inference`` and ``paste_masks_in_image`` image by image."""

from typing import List

import pytest
import torch

from detectron2_export.export.onnx.masks import paste_masks, select_class_masks
from detectron2_export.layers import paste_masks_in_image
from detectron2_export.modeling.roi_heads.mask_head import mask_rcnn_inference
from detectron2_export.structures import Instances

from .helpers import Function, OnnxFunction, dynamic, op_types


@pytest.mark.parametrize("num_classes", [4, 1], ids=["per-class", "class-agnostic"])
def test_select_class_masks_equals_mask_rcnn_inference(num_classes):
    g = torch.Generator().manual_seed(num_classes)
    logits = torch.randn(5, num_classes, 6, 6, generator=g)
    classes = torch.tensor([3, 0, 2, 2, 1]) % num_classes
    instances = Instances((10, 10))
    instances.pred_classes = classes
    mask_rcnn_inference(logits, [instances])
    torch.testing.assert_close(select_class_masks(logits, classes), instances.pred_masks[:, 0], rtol=0, atol=0)


def test_select_class_masks_onnx_on_other_counts():
    g = torch.Generator().manual_seed(0)
    names = ["logits", "classes", "masks"]
    fn = OnnxFunction(Function(select_class_masks), [torch.randn(3, 4, 5, 5, generator=g), torch.tensor([0, 3, 1])], names[:2], names[2:], dynamic(names, [0, 2, 3], [0], [0, 1, 2]))
    logits, classes = torch.randn(7, 4, 8, 8, generator=g), torch.tensor([3, 3, 0, 1, 2, 0, 1])
    torch.testing.assert_close(torch.from_numpy(fn(logits, classes)[0]), select_class_masks(logits, classes), rtol=0, atol=1e-6)


def _paste_case(output_sizes: List[List[int]], d: int, m: int, seed: int):
    """(N, D, M, M) probabilities and (N, D, 4) boxes: inside, partly outside each image (negative
    corners, beyond the bottom-right) and sub-pixel, as detections after clipping never are but
    pasting must handle."""
    g = torch.Generator().manual_seed(seed)
    n = len(output_sizes)
    sizes = torch.tensor(output_sizes, dtype=torch.float32)  # (N, 2) (height, width)
    wh = sizes.flip(1)[:, None, :]
    xy = (torch.rand(n, d, 2, generator=g) * 1.2 - 0.2) * wh
    boxes = torch.cat([xy, xy + (torch.rand(n, d, 2, generator=g) * 0.7 + 0.02) * wh], dim=-1)
    boxes[:, 0] = torch.cat([-0.3 * wh[:, 0], 1.1 * wh[:, 0]], dim=-1)  # covers the whole image and more
    boxes[:, 1] = torch.cat([0.5 * wh[:, 0], 0.5 * wh[:, 0] + 0.6], dim=-1)  # under one pixel wide
    return torch.rand(n, d, m, m, generator=g), boxes


def _assert_paste_matches(pasted: torch.Tensor, masks, boxes, output_sizes: List[List[int]]) -> None:
    """Each image's own (height, width) corner equals paste_masks_in_image of its masks."""
    for i, (h, w) in enumerate(output_sizes):
        expected = paste_masks_in_image(masks[i], boxes[i], (h, w), threshold=0.5)
        got = pasted[i, :, :h, :w]
        mismatch = (got != expected).sum().item()
        assert mismatch == 0, f"image {i}: {mismatch} of {expected.numel()} pixels differ"


def test_paste_masks_equals_paste_masks_in_image():
    output_sizes = [[23, 31], [40, 17], [9, 12]]
    masks, boxes = _paste_case(output_sizes, 6, 7, seed=0)
    pasted = paste_masks(masks, boxes, torch.tensor(output_sizes))
    assert pasted.dtype == torch.bool and pasted.shape == (3, 6, 40, 31)
    _assert_paste_matches(pasted, masks, boxes, output_sizes)
    assert pasted[:, 0].flatten(1).any(1).all()  # the box over the whole image pastes something


def test_paste_masks_hand_case():
    """A 2x2 mask [[1, 0], [0, 0]] in box (0, 0, 4, 4): pixel centres 0.5 .. 3.5 sample mask
    positions -0.25, 0.25, 0.75, 1.25, i.e. 0.75, 0.75, 0.25, 0 along each axis (zero padding
    outside the mask), so only the top-left 2x2 pixels reach 0.75 * 0.75 >= 0.5."""
    masks = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    pasted = paste_masks(masks, torch.tensor([[[0.0, 0.0, 4.0, 4.0]]]), torch.tensor([[5, 6]]))
    expected = torch.zeros(5, 6, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(pasted[0, 0], expected)


def test_paste_masks_onnx_on_other_batch_detection_and_output_sizes():
    names = ["masks", "boxes", "output_sizes", "pasted"]
    fn = OnnxFunction(
        Function(paste_masks), [*_paste_case([[20, 24], [16, 30]], 3, 7, seed=1), torch.tensor([[20, 24], [16, 30]])],
        names[:3], names[3:], dynamic(names, [0, 1, 2, 3], [0, 1], [0], [0, 1, 2, 3]),
    )
    assert op_types(fn.model).count("GridSample") == 1
    for output_sizes, d, m in [([[33, 18], [11, 41], [25, 25]], 5, 7), ([[12, 9]], 2, 4)]:
        masks, boxes = _paste_case(output_sizes, d, m, seed=d)
        pasted = torch.from_numpy(fn(masks, boxes, torch.tensor(output_sizes))[0])
        h = max(s[0] for s in output_sizes)
        w = max(s[1] for s in output_sizes)
        assert pasted.dtype == torch.bool and pasted.shape == (len(output_sizes), d, h, w)
        _assert_paste_matches(pasted, masks, boxes, output_sizes)


def test_paste_masks_onnx_padding_detection_with_an_empty_box_pastes_nothing():
    """Images with fewer detections carry padding entries whose boxes may be all zero: 0/0 grid
    coordinates must give empty masks, not garbage (torch: NaN samples are outside, so zero)."""
    masks, boxes = _paste_case([[10, 12], [8, 8]], 2, 5, seed=2)
    boxes[1, 1] = 0.0
    names = ["masks", "boxes", "output_sizes", "pasted"]
    fn = OnnxFunction(Function(paste_masks), [masks, boxes, torch.tensor([[10, 12], [8, 8]])], names[:3], names[3:], dynamic(names, [0, 1], [0, 1], [0], [0, 1, 2, 3]))
    torch_pasted = paste_masks(masks, boxes, torch.tensor([[10, 12], [8, 8]]))
    assert not torch_pasted[1, 1].any()
    onnx_pasted = torch.from_numpy(fn(masks, boxes, torch.tensor([[10, 12], [8, 8]]))[0])
    assert not onnx_pasted[1, 1].any()
    assert torch.equal(onnx_pasted, torch_pasted)
