"""ImageList.from_tensors: padded sizes, padding placement and dynamic shapes under tracing."""

import warnings
from typing import List

import pytest
import torch

from detectron2_export.structures import Boxes, ImageList


def _img(c, h, w, value):
    return torch.full((c, h, w), float(value))


@pytest.mark.parametrize(
    "div, expected_hw",
    [(0, (25, 31)), (1, (25, 31)), (32, (32, 32)), (8, (32, 32)), (5, (25, 35))],
)
def test_two_images_padded_size(div, expected_hw):
    a, b = _img(3, 20, 31, 1), _img(3, 25, 10, 2)
    il = ImageList.from_tensors([a, b], size_divisibility=div, pad_value=-1.0)
    assert il.tensor.shape == (2, 3) + expected_hw
    assert il.image_sizes == [(20, 31), (25, 10)]
    assert len(il) == 2
    # image content top-left, padding bottom/right
    assert (il.tensor[0, :, :20, :31] == 1).all() and (il.tensor[1, :, :25, :10] == 2).all()
    assert (il.tensor[0, :, 20:] == -1).all() and (il.tensor[1, :, :, 10:] == -1).all()
    torch.testing.assert_close(il[1], b)
    assert il.tensor.is_contiguous()


@pytest.mark.parametrize("div, expected_hw", [(0, (20, 31)), (32, (32, 32)), (16, (32, 32))])
def test_single_image(div, expected_hw):
    il = ImageList.from_tensors([_img(3, 20, 31, 5)], size_divisibility=div)
    assert il.tensor.shape == (1, 3) + expected_hw
    assert il.tensor.sum().item() == 5 * 3 * 20 * 31  # pad_value 0
    assert il.image_sizes == [(20, 31)]


def test_padding_constraints():
    il = ImageList.from_tensors([_img(1, 5, 7, 1)], 0, padding_constraints={"square_size": 16})
    assert il.tensor.shape == (1, 1, 16, 16)
    il = ImageList.from_tensors([_img(1, 5, 7, 1)], 0, padding_constraints={"size_divisibility": 4})
    assert il.tensor.shape == (1, 1, 8, 8)


def test_two_dim_images_and_to():
    il = ImageList.from_tensors([torch.ones(3, 4), torch.ones(5, 2)], size_divisibility=4)
    assert il.tensor.shape == (2, 8, 4)
    assert il.to(torch.float64).tensor.dtype == torch.float64
    assert il.device == torch.device("cpu")


def test_rejects_mismatched_channels():
    with pytest.raises(AssertionError):
        ImageList.from_tensors([torch.ones(3, 4, 4), torch.ones(1, 4, 4)])


def test_traced_keeps_dynamic_resolution():
    def pad(x, y):
        il = ImageList.from_tensors([x, y], size_divisibility=32)
        return il.tensor, torch.stack([torch.stack(list(s)) for s in il.image_sizes])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(pad, (torch.rand(3, 20, 30), torch.rand(3, 25, 10)), check_trace=False)
    t, sizes = traced(torch.rand(3, 40, 50), torch.rand(3, 70, 10))
    assert t.shape == (2, 3, 96, 64)
    assert sizes.tolist() == [[40, 50], [70, 10]]


class _Preprocess(torch.nn.Module):
    def forward(self, images: List[torch.Tensor]):
        il = ImageList.from_tensors(images, 32)
        boxes = Boxes(torch.tensor([[-1.0, 2.0, 100.0, 3.0]], device=il.device))
        boxes.clip(il.image_sizes[0])
        return il.tensor, boxes.tensor


def test_scripted_with_boxes():
    scripted = torch.jit.script(_Preprocess())
    t, boxes = scripted([torch.ones(3, 5, 6), torch.ones(3, 7, 40)])
    assert t.shape == (2, 3, 32, 64)
    assert boxes.tolist() == [[0, 2, 6, 3]]
