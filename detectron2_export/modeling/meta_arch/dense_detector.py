"""Base class of dense (per-pixel, anchor-based) detectors (detectron2.modeling.meta_arch.dense_detector)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ...structures import Boxes, ImageList, Instances
from ..backbone import Backbone
from .image_io import check_inference_mode, normalize_and_batch, postprocess_detections, register_pixel_stats

__all__ = ["DenseDetector", "permute_to_N_HWA_K"]


def permute_to_N_HWA_K(tensor: Tensor, K: int) -> Tensor:
    """(N, A * K, H, W) head output -> (N, H * W * A, K), the order anchors are generated in."""
    assert tensor.dim() == 4, tensor.shape
    N, _, H, W = tensor.shape
    tensor = tensor.view(N, -1, K, H, W)
    tensor = tensor.permute(0, 3, 4, 1, 2)
    return tensor.reshape(N, -1, K)


class DenseDetector(nn.Module):
    """A fully-convolutional detector: a backbone and a head making per-location predictions.

    Subclasses implement :meth:`forward_inference`.

    Args:
        backbone: a :class:`Backbone`.
        head: a module mapping the list of ``head_in_features`` maps to a list of predictions,
            each a list with one (N, A * K, Hi, Wi) tensor per level.
        head_in_features: backbone features used by the head; defaults to all, by stride.
        pixel_mean, pixel_std: per-channel normalisation of the input images.
    """

    def __init__(
        self,
        backbone: Backbone,
        head: nn.Module,
        head_in_features: Optional[Sequence[str]] = None,
        *,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        if head_in_features is None:
            shapes = self.backbone.output_shape()
            self.head_in_features = sorted(shapes.keys(), key=lambda x: shapes[x].stride)
        else:
            self.head_in_features = head_in_features
        register_pixel_stats(self, pixel_mean, pixel_std)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, Tensor]]):
        """Inputs and outputs as :meth:`GeneralizedRCNN.forward` (``{"instances": ...}`` per image).

        While scripting, returns the raw per-image :class:`Instances` instead.
        """
        check_inference_mode(self.training, "DenseDetector")
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        features = [features[f] for f in self.head_in_features]
        predictions = self.head(features)
        results = self.forward_inference(images, features, predictions)
        if torch.jit.is_scripting():
            return results
        return postprocess_detections(results, batched_inputs, images.image_sizes, "instances")

    def forward_inference(
        self, images: ImageList, features: List[Tensor], predictions: List[List[Tensor]]
    ) -> List[Instances]:
        """Decode the head's predictions into one :class:`Instances` per image."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_inference")

    def preprocess_image(self, batched_inputs: List[Dict[str, Tensor]]) -> ImageList:
        """Normalise, pad and batch the input images."""
        return normalize_and_batch(
            batched_inputs,
            self.pixel_mean,
            self.pixel_std,
            self.backbone.size_divisibility,
            self.backbone.padding_constraints,
        )

    def _transpose_dense_predictions(
        self, predictions: List[List[Tensor]], dims_per_anchor: List[int]
    ) -> List[List[Tensor]]:
        """Each per-level (N, Ai * K, Hi, Wi) prediction -> (N, Hi * Wi * Ai, K).

        ``dims_per_anchor`` gives K for each kind of prediction (e.g. #classes, then 4).
        """
        assert len(predictions) == len(dims_per_anchor)
        res: List[List[Tensor]] = []
        for pred, dim_per_anchor in zip(predictions, dims_per_anchor):
            res.append([permute_to_N_HWA_K(x, dim_per_anchor) for x in pred])
        return res

    def _decode_per_level_predictions(
        self,
        anchors: Boxes,
        pred_scores: Tensor,
        pred_deltas: Tensor,
        score_thresh: float,
        topk_candidates: int,
        image_size: Tuple[int, int],
    ) -> Instances:
        """Candidates of one level of one image: threshold, top-k, decode.

        Args:
            anchors: the level's (H * W * A) anchors.
            pred_scores: (H * W * A, K) class probabilities.
            pred_deltas: (H * W * A, 4) box deltas.

        Returns:
            Instances with ``pred_boxes``, ``scores`` and ``pred_classes``, by decreasing score.
        """
        # Two filters keep NMS cheap: a score threshold, then the top-k scores.
        keep_idxs = pred_scores > score_thresh
        pred_scores = pred_scores[keep_idxs]
        topk_idxs = torch.nonzero(keep_idxs)  # (K', 2): anchor index, class index

        num_candidates = topk_idxs.shape[0]
        if isinstance(num_candidates, Tensor):
            # a tensor while tracing: the count stays in the graph instead of being baked in
            num_topk = torch.clamp(num_candidates, max=topk_candidates)
        else:
            num_topk = min(topk_candidates, num_candidates)
        pred_scores, idxs = pred_scores.topk(num_topk)
        topk_idxs = topk_idxs[idxs]

        anchor_idxs, classes_idxs = topk_idxs.unbind(dim=1)
        pred_boxes = self.box2box_transform.apply_deltas(
            pred_deltas[anchor_idxs], anchors.tensor[anchor_idxs]
        )
        return Instances(
            image_size, pred_boxes=Boxes(pred_boxes), scores=pred_scores, pred_classes=classes_idxs
        )

    def _decode_multi_level_predictions(
        self,
        anchors: List[Boxes],
        pred_scores: List[Tensor],
        pred_deltas: List[Tensor],
        score_thresh: float,
        topk_candidates: int,
        image_size: Tuple[int, int],
    ) -> Instances:
        """:meth:`_decode_per_level_predictions` on every level, concatenated."""
        predictions = [
            self._decode_per_level_predictions(
                anchors_i, box_cls_i, box_reg_i, score_thresh, topk_candidates, image_size
            )
            for box_cls_i, box_reg_i, anchors_i in zip(pred_scores, pred_deltas, anchors)
        ]
        return predictions[0].cat(predictions)
