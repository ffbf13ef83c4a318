"""``preprocess``: normalisation and padding of a whole batch in the graph, against normalising each
image then ``ImageList.from_tensors`` (detectron2's ``preprocess_image``); in torch and exported."""

from typing import List

import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.preprocess import normalize_and_pad, padded_sizes
from detectron2_export.structures import ImageList

from .helpers import OnnxFunction, dynamic

MEAN = torch.tensor([103.5, 116.3, 123.7]).view(3, 1, 1)
STD = torch.tensor([57.4, 57.1, 58.4]).view(3, 1, 1)


def _case(sizes: List[List[int]], seed: int):
    """Raw images, and the graph's batch of them with garbage (not zeros) outside each image."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, h, w, generator=g) * 255 for h, w in sizes]
    batch = torch.rand(len(sizes), 3, max(h for h, _ in sizes), max(w for _, w in sizes), generator=g) * 1000
    for i, x in enumerate(images):
        batch[i, :, : x.shape[1], : x.shape[2]] = x
    return images, batch


def _reference(images, divisibility: int) -> torch.Tensor:
    return ImageList.from_tensors([(x - MEAN) / STD for x in images], divisibility).tensor


CASES = [([[20, 30], [33, 7]], 32), ([[20, 30], [33, 7]], 0), ([[64, 64]], 32), ([[5, 9], [9, 5], [1, 1]], 4)]


@pytest.mark.parametrize("sizes, divisibility", CASES)
def test_torch_equals_normalise_then_image_list(sizes, divisibility):
    images, batch = _case(sizes, seed=divisibility)
    got = normalize_and_pad(batch, torch.tensor(sizes), MEAN, STD, divisibility)
    torch.testing.assert_close(got, _reference(images, divisibility), rtol=0, atol=1e-6)


def test_padded_sizes_hand_case():
    sizes = torch.tensor([[20, 32], [33, 1]])
    assert padded_sizes(sizes, 32).tolist() == [[32, 32], [64, 32]]
    assert padded_sizes(sizes, 0).tolist() == sizes.tolist()


class Preprocess(nn.Module):
    def forward(self, images, image_sizes):
        return normalize_and_pad(images, image_sizes, MEAN, STD, 32), padded_sizes(image_sizes, 32)


def test_onnx_on_other_batches_and_sizes():
    names = ["images", "image_sizes", "normalized", "padded_sizes"]
    fn = OnnxFunction(Preprocess(), [_case([[20, 30], [33, 7]], seed=0)[1], torch.tensor([[20, 30], [33, 7]])], names[:2], names[2:], dynamic(names, [0, 2, 3], [0], [0, 2, 3], [0]))
    for sizes in [[[64, 40], [3, 70], [31, 33]], [[32, 32]]]:
        images, batch = _case(sizes, seed=len(sizes))
        normalized, padded = fn(batch, torch.tensor(sizes))
        torch.testing.assert_close(torch.from_numpy(normalized), _reference(images, 32), rtol=0, atol=1e-5)
        assert padded.tolist() == padded_sizes(torch.tensor(sizes), 32).tolist()
