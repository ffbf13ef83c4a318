"""detectron2's ``Matcher``: assigns each prediction (anchor, proposal) to a ground-truth element.

Only training uses it (label assignment), but model constructors and the LazyConfig model configs
take one as an argument (``anchor_matcher``, ``proposal_matcher(s)``), so it exists here with
detectron2's signature and semantics.
"""

from __future__ import annotations

from typing import List, Tuple

import torch

from ..errors import ConfigError
from ..layers import nonzero_tuple

__all__ = ["Matcher"]


class Matcher:
    """Match each column (prediction) of an (M ground truth, N predictions) quality matrix to its
    best row and label it by the interval of ``thresholds`` its best quality falls in.

    Args:
        thresholds: increasing cut points, the first > 0; they split [-inf, inf) into
            ``len(thresholds) + 1`` intervals (each closed on the left).
        labels: one label per interval: 1 positive, 0 negative, -1 ignored.
        allow_low_quality_matches: also label positive, for each ground truth, the predictions
            whose quality with it is its highest (even below the positive threshold).
    """

    def __init__(self, thresholds: List[float], labels: List[int], allow_low_quality_matches: bool = False):
        thresholds = list(thresholds)
        if not thresholds or thresholds[0] <= 0:
            raise ConfigError(f"Matcher: thresholds={thresholds}, expected a non-empty list starting above 0")
        if any(low > high for low, high in zip(thresholds[:-1], thresholds[1:])):
            raise ConfigError(f"Matcher: thresholds={thresholds}, expected them in increasing order")
        labels = list(labels)
        if any(label not in (-1, 0, 1) for label in labels) or len(labels) != len(thresholds) + 1:
            raise ConfigError(
                f"Matcher: labels={labels}, expected {len(thresholds) + 1} labels (one per interval), each -1, 0 or 1"
            )
        self.thresholds = [-float("inf")] + thresholds + [float("inf")]
        self.labels = labels
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(M, N) qualities >= 0 -> (matches (N,) int64 row index, match_labels (N,) int8)."""
        if match_quality_matrix.dim() != 2:
            raise ValueError(f"Matcher: quality matrix of shape {tuple(match_quality_matrix.shape)}, expected (M, N)")
        num_predictions = match_quality_matrix.size(1)
        if match_quality_matrix.numel() == 0:
            # no ground truth (or no prediction): everything gets the label of the lowest interval
            matches = match_quality_matrix.new_full((num_predictions,), 0, dtype=torch.int64)
            match_labels = match_quality_matrix.new_full((num_predictions,), self.labels[0], dtype=torch.int8)
            return matches, match_labels
        if not torch.all(match_quality_matrix >= 0):
            raise ValueError("Matcher: the quality matrix has negative entries, expected qualities >= 0")

        matched_vals, matches = match_quality_matrix.max(dim=0)
        match_labels = matches.new_full(matches.size(), 1, dtype=torch.int8)
        for label, low, high in zip(self.labels, self.thresholds[:-1], self.thresholds[1:]):
            match_labels[(matched_vals >= low) & (matched_vals < high)] = label
        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(match_labels, match_quality_matrix)
        return matches, match_labels

    def set_low_quality_matches_(self, match_labels: torch.Tensor, match_quality_matrix: torch.Tensor) -> None:
        """Label positive every prediction that is (one of) the best for some ground truth."""
        highest_quality_foreach_gt, _ = match_quality_matrix.max(dim=1)
        _, pred_inds_with_highest_quality = nonzero_tuple(match_quality_matrix == highest_quality_foreach_gt[:, None])
        match_labels[pred_inds_with_highest_quality] = 1
