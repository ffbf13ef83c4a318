"""diou_loss / ciou_loss against hand-computed pairs; cross_entropy on empty inputs (as upstream)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.layers import ciou_loss, cross_entropy, diou_loss, empty_input_loss_func_wrapper


def test_diou_and_ciou_hand_cases():
    boxes1 = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 2], [5, 5, 6, 7]])
    boxes2 = torch.tensor([[1.0, 1, 3, 3], [0, 0, 2, 1], [5, 5, 6, 7]])
    # pair 0: IoU 1/7; enclosing box 3x3 (diagonal^2 18); centres (1, 1), (2, 2): distance^2 2
    # pair 1: IoU 1/3; enclosing 2x2 (8); centres (0.5, 1), (1, 0.5): 0.5
    # pair 2: the same box
    diou = torch.tensor([1 - 1 / 7 + 2 / 18, 1 - 1 / 3 + 0.5 / 8, 0.0])
    torch.testing.assert_close(diou_loss(boxes1, boxes2), diou, rtol=0, atol=1e-6)
    # aspect term: pairs 0 and 2 have equal aspect ratios (v = 0); pair 1 is 1x2 against 2x1
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(0.5)) ** 2
    alpha = v / (1 - 1 / 3 + v)
    ciou = diou + torch.tensor([0.0, alpha * v, 0.0])
    torch.testing.assert_close(ciou_loss(boxes1, boxes2), ciou, rtol=0, atol=1e-6)
    torch.testing.assert_close(ciou_loss(boxes1, boxes2, reduction="sum"), ciou.sum(), rtol=0, atol=1e-6)
    torch.testing.assert_close(diou_loss(boxes1, boxes2, reduction="mean"), diou.mean(), rtol=0, atol=1e-6)


def test_box_losses_empty_and_bad_input():
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = diou_loss(empty, empty.detach(), reduction="mean")
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match="boxes1 has x2 < x1"):
        ciou_loss(torch.tensor([[2.0, 0, 1, 1]]), torch.tensor([[0.0, 0, 1, 1]]))
    with pytest.raises(ValueError, match="reduction='avg', expected 'none', 'mean' or 'sum'"):
        diou_loss(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[0.0, 0, 1, 1]]), reduction="avg")


def test_cross_entropy_is_zero_on_empty_input():
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad  # F.cross_entropy gives NaN here
    assert math.isnan(F.cross_entropy(logits, torch.zeros(0, dtype=torch.long)).item())
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 2])
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(logits, target))
    assert cross_entropy(logits[:0], target[:0], reduction="sum").item() == 0.0
    smooth_l1 = empty_input_loss_func_wrapper(F.smooth_l1_loss)
    assert smooth_l1(torch.zeros(0), torch.zeros(0)).item() == 0.0
