"""Sampling of positive / negative training examples (detectron2.modeling.sampling).

Only training samples anchors or proposals; kept because detectron2 scripts import it from here.
"""

from __future__ import annotations

from typing import Tuple

import torch

from ..layers import nonzero_tuple

__all__ = ["subsample_labels"]


def subsample_labels(
    labels: torch.Tensor, num_samples: int, positive_fraction: float, bg_label: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Randomly pick at most ``num_samples`` elements, at most ``positive_fraction`` of them
    positive (label not -1 and not ``bg_label``), the rest negative (label ``bg_label``); -1 is
    ignored. Fewer positives than allowed leave their room to negatives.

    Returns:
        (positive indices, negative indices) into ``labels``, 1-d int64 tensors.
    """
    positive = nonzero_tuple((labels != -1) & (labels != bg_label))[0]
    negative = nonzero_tuple(labels == bg_label)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    pos_idx = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
    neg_idx = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]
    return pos_idx, neg_idx
