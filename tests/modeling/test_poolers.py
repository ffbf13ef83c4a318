"""ROIPooler: FPN level assignment by hand, pooler-format rois, and pooling vs per-box roi_align."""

import pytest
import torch
from torchvision.ops import roi_align

from detectron2_export.modeling.poolers import (
    ROIPooler,
    assign_boxes_to_levels,
    convert_boxes_to_pooler_format,
)
from detectron2_export.structures import Boxes


def _square(size: float, x0: float = 0.0) -> list:
    return [x0, 0.0, x0 + size, size]


def test_assign_boxes_to_levels_hand_computed():
    # level = floor(4 + log2(sqrt(area) / 224 + 1e-8)) clamped to [2, 5], returned minus 2
    boxes = Boxes(
        torch.tensor(
            [
                _square(224),
                _square(112),
                _square(448),
                _square(10),
                _square(1000),
                _square(223.9),
                _square(0.0),
            ]
        )
    )
    levels = assign_boxes_to_levels(
        [boxes], min_level=2, max_level=5, canonical_box_size=224, canonical_level=4
    )
    assert levels.dtype == torch.int64
    assert levels.tolist() == [2, 1, 3, 0, 3, 1, 0]


def test_assign_boxes_to_levels_over_several_images():
    a = Boxes(torch.tensor([_square(56)]))  # log2(56/224) = -2 -> level 2
    b = Boxes(torch.tensor([_square(896), _square(224)]))  # +2 -> 6 -> clamp 5; level 4
    assert assign_boxes_to_levels([a, b], 2, 5, 224, 4).tolist() == [0, 3, 2]


def test_convert_boxes_to_pooler_format():
    a = Boxes(torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]))
    b = Boxes(torch.zeros(0, 4))
    c = Boxes(torch.tensor([[9.0, 10.0, 11.0, 12.0]]))
    rois = convert_boxes_to_pooler_format([a, b, c])
    torch.testing.assert_close(rois, torch.tensor([[0.0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [2, 9, 10, 11, 12]]))


def _random_boxes(n, max_size, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * max_size + 2
    return Boxes(torch.cat([xy, xy + wh], dim=1))


@pytest.mark.parametrize("pooler_type, aligned", [("ROIAlignV2", True), ("ROIAlign", False)])
def test_multi_level_pooling_matches_per_box_roi_align(pooler_type, aligned):
    """Each box is pooled from its assigned level only, and results keep the input order."""
    scales = [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(2, 3, 128 // 2**i, 128 // 2**i, generator=g) for i in range(4)]
    box_lists = [_random_boxes(7, 300, seed=1), _random_boxes(5, 300, seed=2)]
    pooler = ROIPooler(output_size=(7, 7), scales=scales, sampling_ratio=2, pooler_type=pooler_type)
    out = pooler(features, box_lists)
    assert out.shape == (12, 3, 7, 7)

    levels = assign_boxes_to_levels(box_lists, 2, 5, 224, 4)
    assert len(set(levels.tolist())) > 1  # the case really spans several levels
    i = 0
    for img, boxes in enumerate(box_lists):
        for box in boxes.tensor:
            lvl = int(levels[i])
            roi = torch.cat([torch.tensor([float(img)]), box])[None]
            expected = roi_align(features[lvl], roi, (7, 7), scales[lvl], 2, aligned)
            torch.testing.assert_close(out[i : i + 1], expected, msg=f"box {i}")
            i += 1


def test_single_level_pooling_and_empty_inputs():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    pooler = ROIPooler(output_size=2, scales=[1.0], sampling_ratio=1, pooler_type="ROIAlignV2")
    assert pooler.min_level == 0 and pooler.max_level == 0
    # the half-pixel shift turns box (1, 1, 3, 3) into [0.5, 2.5]^2: one sample per bin at pixels 1..2
    out = pooler([x], [Boxes(torch.tensor([[1.0, 1.0, 3.0, 3.0]]))])
    torch.testing.assert_close(out, torch.tensor([[[[6.0, 7.0], [11.0, 12.0]]]]))
    assert pooler([x], [Boxes(torch.zeros(0, 4))]).shape == (0, 1, 2, 2)
    assert pooler([x[:0]], []).shape == (0, 1, 2, 2)


def test_roipool_type():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    pooler = ROIPooler(output_size=1, scales=[1.0], sampling_ratio=0, pooler_type="ROIPool")
    out = pooler([x], [Boxes(torch.tensor([[0.0, 0.0, 3.0, 3.0]]))])
    assert out.item() == 15.0  # max over the box


def test_constructor_errors():
    with pytest.raises(ValueError, match="pooler_type='ROIMagic'"):
        ROIPooler(7, [1 / 4], 0, "ROIMagic")
    with pytest.raises(ValueError, match="expected 1 / \\(a power of 2\\)"):
        ROIPooler(7, [1 / 3], 0, "ROIAlignV2")
    with pytest.raises(ValueError, match="a pyramid"):
        ROIPooler(7, [1 / 4, 1 / 16], 0, "ROIAlignV2")
    with pytest.raises(ValueError, match="output_size"):
        ROIPooler((7, 7, 7), [1 / 4], 0, "ROIAlignV2")


def test_forward_errors():
    pooler = ROIPooler(7, [1 / 4, 1 / 8], 0, "ROIAlignV2")
    x = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    with pytest.raises(ValueError, match="1 feature maps, expected 2"):
        pooler(x[:1], [Boxes(torch.zeros(0, 4))])
    with pytest.raises(ValueError, match="2 box lists, expected one per image \\(1\\)"):
        pooler(x, [Boxes(torch.zeros(0, 4))] * 2)
