"""``BoxWithNMSLimit``: per-class score threshold and NMS, then a per-image top-k (SPEC 5.3)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import OperatorInputError
from ..registry import Arg, register_op
from .box_utils import caffe2_torch_ops, soft_nms
from .box_utils import nms as greedy_nms


def box_with_nms_limit(
    scores: Tensor,
    boxes: Tensor,
    batch_splits: Tensor,
    score_thresh: float,
    nms: float,
    detections_per_im: int,
    soft_nms_enabled: bool,
    soft_nms_method: str,
    soft_nms_sigma: float,
    soft_nms_min_score_thres: float,
    rotated: bool,
    cls_agnostic_bbox_reg: bool,
    input_boxes_include_bg_cls: bool,
    output_classes_include_bg_cls: bool,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The kernel of ``_caffe2::BoxWithNMSLimit``.

    Returns ``(scores (D,), boxes (D, B), classes (D,) float, batch_splits (N,) float,
    keeps (D,) int32, keeps_size (N, C) int32)``; detections are written image by image and,
    within an image, class by class in increasing class id.
    """
    layout = _Layout(scores, boxes, rotated, cls_agnostic_bbox_reg, input_boxes_include_bg_cls)
    scores, boxes = layout.scores, layout.boxes
    counts = [int(v) for v in batch_splits.reshape(-1).tolist()]
    if sum(counts) != scores.shape[0]:
        raise OperatorInputError(
            f"BoxWithNMSLimit: sum(batch_splits)={sum(counts)}, expected {scores.shape[0]} (rows of scores)"
        )
    if soft_nms_method not in ("linear", "gaussian"):
        raise OperatorInputError(
            f"BoxWithNMSLimit: soft_nms_method={soft_nms_method!r}, expected 'linear' or 'gaussian'"
        )
    nms_args = dict(
        score_thresh=score_thresh, nms_thresh=nms, detections_per_im=detections_per_im,
        soft=(soft_nms_method, soft_nms_sigma, soft_nms_min_score_thres) if soft_nms_enabled else None,
        legacy_plus_one=legacy_plus_one,
    )
    per_image = []
    offset = 0
    for count in counts:
        per_image.append(_one_image(layout, scores[offset:offset + count], boxes[offset:offset + count], **nms_args))
        offset += count
    out_scores, out_boxes, out_classes, out_keeps = ([image[k] for image in per_image] for k in range(4))
    num_classes = scores.shape[1]
    keeps_size = torch.zeros((len(counts), num_classes), dtype=torch.int32, device=scores.device)
    for b, classes in enumerate(out_classes):
        keeps_size[b] = torch.bincount(classes, minlength=num_classes).to(torch.int32)
    class_offset = 0 if output_classes_include_bg_cls else 1
    return (
        _cat(out_scores, scores.new_zeros((0,))),
        _cat(out_boxes, boxes.new_zeros((0, layout.box_dim))),
        _cat([(c - class_offset).to(scores.dtype) for c in out_classes], scores.new_zeros((0,))),
        keeps_size.sum(1).to(scores.dtype),
        _cat(out_keeps, torch.zeros(0, dtype=torch.int32, device=scores.device)),
        keeps_size,
    )


def _cat(parts: list[Tensor], empty: Tensor) -> Tensor:
    return torch.cat(parts) if parts else empty


class _Layout:
    """Where class ``j`` (0 = background) finds its score column and its box block."""

    def __init__(self, scores: Tensor, boxes: Tensor, rotated: bool, cls_agnostic: bool, include_bg: bool):
        self.box_dim = 5 if rotated else 4
        self.scores = _squeeze_trailing(scores, "scores")
        self.boxes = _squeeze_trailing(boxes, "boxes")
        self.cls_agnostic = cls_agnostic
        self.include_bg = include_bg
        num_rows, num_classes = self.scores.shape
        if self.boxes.shape[0] != num_rows:
            raise OperatorInputError(
                f"BoxWithNMSLimit: boxes rows={self.boxes.shape[0]}, expected {num_rows} (rows of scores)"
            )
        expected = (self.box_index(num_classes - 1) + 1) * self.box_dim
        if self.boxes.shape[1] != expected:
            raise OperatorInputError(
                f"BoxWithNMSLimit: boxes columns={self.boxes.shape[1]}, expected {expected} for {num_classes} "
                f"score columns (cls_agnostic_bbox_reg={cls_agnostic}, input_boxes_include_bg_cls={include_bg})"
            )

    def score_index(self, j):
        """Score column of class ``j`` (an int or a tensor of class ids)."""
        return j if self.include_bg else j - 1

    def box_index(self, j):
        """Box block of class ``j`` (an int or a tensor of class ids)."""
        return j * 0 if self.cls_agnostic else self.score_index(j)

    def class_boxes(self, boxes: Tensor, j: int) -> Tensor:
        start = self.box_index(j) * self.box_dim
        return boxes[:, start:start + self.box_dim]


def _squeeze_trailing(x: Tensor, name: str) -> Tensor:
    if x.dim() == 4 and x.shape[2] == 1 and x.shape[3] == 1:
        return x.reshape(x.shape[0], x.shape[1])
    if x.dim() != 2:
        raise OperatorInputError(
            f"BoxWithNMSLimit: {name} shape={tuple(x.shape)}, expected 2-D or 4-D with trailing 1x1"
        )
    return x


def _one_image(
    layout: _Layout, scores: Tensor, boxes: Tensor, *, score_thresh: float, nms_thresh: float,
    detections_per_im: int, soft: tuple[str, float, float] | None, legacy_plus_one: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(scores, boxes, class ids, kept rows) of one image, in output order."""
    num_classes = scores.shape[1]
    above = scores > score_thresh
    present = above.sum(0).tolist()
    kept_rows, kept_classes = [], []
    for j in range(1, num_classes):
        col = layout.score_index(j)
        if present[col] == 0:
            continue
        candidates = torch.nonzero(above[:, col]).squeeze(1)
        cls_boxes = layout.class_boxes(boxes, j)
        if soft is not None:
            method, sigma, min_score = soft
            keep, new_scores = soft_nms(
                cls_boxes, scores[:, col], candidates, sigma=sigma, overlap_thresh=nms_thresh,
                score_thresh=min_score, method=method, legacy_plus_one=legacy_plus_one,
            )
            scores = scores.clone()
            scores[:, col] = new_scores
        else:
            candidates = candidates[scores[candidates, col].argsort(descending=True, stable=True)]
            top_n = detections_per_im if detections_per_im > 0 else -1
            keep = candidates[greedy_nms(cls_boxes[candidates], nms_thresh, top_n, legacy_plus_one=legacy_plus_one)]
        kept_rows.append(keep)
        kept_classes.append(torch.full_like(keep, j))
    rows = _cat(kept_rows, torch.zeros(0, dtype=torch.int64, device=scores.device))
    classes = _cat(kept_classes, torch.zeros(0, dtype=torch.int64, device=scores.device))
    kept_scores = scores[rows, layout.score_index(classes)]
    if 0 < detections_per_im < rows.numel():
        best = kept_scores.argsort(descending=True, stable=True)[:detections_per_im]
        # regroup class by class, each class keeping its rows in score order
        best = best[classes[best].argsort(stable=True)]
        rows, classes, kept_scores = rows[best], classes[best], kept_scores[best]
    box_cols = torch.arange(layout.box_dim, device=scores.device)
    kept_boxes = boxes[rows.unsqueeze(1), (layout.box_index(classes) * layout.box_dim).unsqueeze(1) + box_cols]
    return kept_scores, kept_boxes, classes, rows.to(torch.int32)


@register_op(
    "BoxWithNMSLimit",
    n_inputs=(2, 3),
    n_outputs=(3, 6),
    args=(
        Arg("score_thresh", float, 0.05),
        Arg("nms", float, 0.3),
        Arg("detections_per_im", int, 100),
        Arg("soft_nms_enabled", bool, False),
        Arg("soft_nms_method", str, "linear", lambda v: v in ("linear", "gaussian"), "'linear' or 'gaussian'"),
        Arg("soft_nms_sigma", float, 0.5),
        Arg("soft_nms_min_score_thres", float, 0.001),
        Arg("rotated", bool, False),
        Arg("cls_agnostic_bbox_reg", bool, False),
        Arg("input_boxes_include_bg_cls", bool, True),
        Arg("output_classes_include_bg_cls", bool, True),
        Arg("legacy_plus_one", bool, True),
    ),
)
def box_with_nms_limit_op(scores: Tensor, boxes: Tensor, *batch_splits: Tensor, **args) -> tuple[Tensor, ...]:
    """Runtime entry: all six outputs through ``torch.ops._caffe2.BoxWithNMSLimit``.

    Without the optional ``batch_splits`` input every row belongs to one image.
    """
    splits = batch_splits[0] if batch_splits else scores.new_tensor([float(scores.shape[0])])
    return tuple(caffe2_torch_ops().BoxWithNMSLimit(scores, boxes, splits, **args))
