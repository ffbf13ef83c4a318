"""``semantic.resize_to_outputs``: semantic logits of a whole batch cropped to each image and resized
to its output size in one GridSample, against detectron2's ``sem_seg_postprocess`` image by image."""

from typing import List

import pytest
import torch

from detectron2_export.export.onnx.semantic import resize_to_outputs
from detectron2_export.modeling.postprocessing import sem_seg_postprocess

from .helpers import Function, OnnxFunction, dynamic, op_types

ATOL = 1e-5


def _logits(n: int, padded: List[int], seed: int) -> torch.Tensor:
    return torch.randn(n, 3, *padded, generator=torch.Generator().manual_seed(seed))


def _assert_matches(resized: torch.Tensor, logits, image_sizes: List[List[int]], output_sizes: List[List[int]]) -> None:
    assert resized.shape == (len(image_sizes), logits.shape[1], max(s[0] for s in output_sizes), max(s[1] for s in output_sizes))
    for i, ((h, w), (oh, ow)) in enumerate(zip(image_sizes, output_sizes)):
        expected = sem_seg_postprocess(logits[i], (h, w), oh, ow)
        torch.testing.assert_close(resized[i, :, :oh, :ow], expected, rtol=0, atol=ATOL, msg=f"image {i}")


CASES = [
    # (image sizes, output sizes, padded size): up- and down-sampling, unequal factors per axis
    ([[20, 28], [12, 16], [32, 32]], [[40, 14], [7, 30], [32, 32]], [32, 32]),
    ([[17, 9]], [[5, 50]], [24, 16]),
    ([[30, 10], [6, 40]], [[30, 10], [61, 3]], [32, 48]),
]


@pytest.mark.parametrize("image_sizes, output_sizes, padded", CASES)
def test_torch_equals_sem_seg_postprocess(image_sizes, output_sizes, padded):
    logits = _logits(len(image_sizes), padded, seed=padded[1])
    resized = resize_to_outputs(logits, torch.tensor(image_sizes), torch.tensor(output_sizes))
    _assert_matches(resized, logits, image_sizes, output_sizes)


def test_hand_case_identity_and_2x_upsampling():
    logits = torch.arange(4.0).reshape(1, 1, 2, 2).expand(2, 1, 2, 2).contiguous()  # [[0, 1], [2, 3]]
    resized = resize_to_outputs(logits, torch.tensor([[2, 2], [2, 2]]), torch.tensor([[2, 2], [4, 4]]))
    torch.testing.assert_close(resized[0, 0, :2, :2], logits[0, 0], rtol=0, atol=1e-6)
    # 2x upsampling, align_corners=False: source positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    row = torch.tensor([0.0, 0.25, 0.75, 1.0])
    torch.testing.assert_close(resized[1, 0], row[None, :] + 2 * row[:, None], rtol=0, atol=1e-6)


def test_onnx_equals_sem_seg_postprocess_on_other_shapes():
    names = ["logits", "image_sizes", "output_sizes", "sem_seg"]
    fn = OnnxFunction(
        Function(resize_to_outputs), [_logits(2, [16, 16], seed=0), torch.tensor([[16, 12], [8, 16]]), torch.tensor([[20, 10], [8, 30]])],
        names[:3], names[3:], dynamic(names, [0, 2, 3], [0], [0], [0, 2, 3]),
    )
    assert op_types(fn.model).count("GridSample") == 1
    for image_sizes, output_sizes, padded in CASES:
        logits = _logits(len(image_sizes), padded, seed=padded[0])
        resized = torch.from_numpy(fn(logits, torch.tensor(image_sizes), torch.tensor(output_sizes))[0])
        _assert_matches(resized, logits, image_sizes, output_sizes)
