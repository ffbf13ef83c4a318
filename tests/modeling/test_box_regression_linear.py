"""Box2BoxTransformLinear (FCOS's (l, t, r, b) parametrisation) on hand-computed boxes; the
training-only names detectron2 keeps in modeling.box_regression."""

from __future__ import annotations

import pytest
import torch

from detectron2_export.modeling.box_regression import Box2BoxTransformLinear
from detectron2_export.utils.training_only import TrainingOnlyError

# an 8x8 anchor centred at (4, 4), and boxes around that centre
SRC = torch.tensor([[0.0, 0.0, 8.0, 8.0], [10.0, 10.0, 14.0, 14.0]])
TARGET = torch.tensor([[1.0, 2.0, 10.0, 12.0], [11.0, 9.0, 12.5, 20.0]])
# (centre - x1, centre - y1, x2 - centre, y2 - centre): (4 - 1, 4 - 2, 10 - 4, 12 - 4) and
# (12 - 11, 12 - 9, 12.5 - 12, 20 - 12)
RAW = torch.tensor([[3.0, 2.0, 6.0, 8.0], [1.0, 3.0, 0.5, 8.0]])


def test_get_deltas_hand():
    torch.testing.assert_close(Box2BoxTransformLinear(normalize_by_size=False).get_deltas(SRC, TARGET), RAW)
    # in units of the anchor size (8 and 4)
    normalized = RAW / torch.tensor([[8.0], [4.0]])
    torch.testing.assert_close(Box2BoxTransformLinear().get_deltas(SRC, TARGET), normalized)


@pytest.mark.parametrize("normalize_by_size", [True, False])
def test_apply_deltas_inverts_get_deltas(normalize_by_size):
    transform = Box2BoxTransformLinear(normalize_by_size)
    deltas = transform.get_deltas(SRC, TARGET)
    torch.testing.assert_close(transform.apply_deltas(deltas, SRC), TARGET)
    # k classes: (N, k * 4) deltas decode to (N, k * 4) boxes, class by class
    two = transform.apply_deltas(torch.cat([deltas, deltas * 2], dim=1), SRC)
    assert two.shape == (2, 8)
    torch.testing.assert_close(two[:, :4], TARGET)
    torch.testing.assert_close(two[:, 4:], transform.apply_deltas(deltas * 2, SRC))


def test_negative_distances_are_clamped_to_the_centre():
    deltas = torch.tensor([[-1.0, 0.5, 0.25, -3.0]])
    # relu: l = 0, t = 0.5 * 8, r = 0.25 * 8, b = 0 around the centre (4, 4)
    out = Box2BoxTransformLinear().apply_deltas(deltas, SRC[:1])
    torch.testing.assert_close(out, torch.tensor([[4.0, 0.0, 6.0, 4.0]]))


def test_training_only_names_import():
    from detectron2_export.modeling.box_regression import _dense_box_regression_loss, giou_loss, smooth_l1_loss

    # fvcore's losses, as upstream imports them here
    loss = smooth_l1_loss(torch.tensor([0.0, 2.0]), torch.tensor([0.5, 0.0]), beta=1.0, reduction="none")
    torch.testing.assert_close(loss, torch.tensor([0.125, 1.5]))  # 0.5 * 0.5^2 / 1 and 2 - 0.5
    same = giou_loss(SRC, SRC, reduction="none")
    torch.testing.assert_close(same, torch.zeros(2), rtol=0, atol=1e-6)
    with pytest.raises(TrainingOnlyError, match=r"box_regression\._dense_box_regression_loss is training-only"):
        _dense_box_regression_loss([SRC], None, [], [], None)
    with pytest.raises(NotImplementedError):  # TrainingOnlyError is one
        _dense_box_regression_loss()
