"""Panoptic FPN (detectron2.modeling.meta_arch.panoptic_fpn): Mask R-CNN plus a semantic branch.

Instance and semantic predictions are merged into a panoptic segmentation with
:func:`combine_semantic_and_instance_outputs`.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn

from ...config.configurable import configurable
from ...structures import Instances
from ..postprocessing import detector_postprocess, sem_seg_postprocess
from .build import META_ARCH_REGISTRY
from .image_io import check_inference_mode
from .rcnn import GeneralizedRCNN
from .semantic_seg import build_sem_seg_head

__all__ = ["PanopticFPN", "combine_semantic_and_instance_outputs"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class PanopticFPN(GeneralizedRCNN):
    """:class:`GeneralizedRCNN` with a semantic segmentation head on the same backbone.

    Args:
        sem_seg_head: a semantic segmentation head, e.g. :class:`SemSegFPNHead`.
        combine_on: add ``"panoptic_seg"`` to the post-processed outputs
            (``MODEL.PANOPTIC_FPN.COMBINE.ENABLED``).
        combine_overlap_thresh, combine_stuff_area_thresh, combine_instances_score_thresh: see
            :func:`combine_semantic_and_instance_outputs`.
        kwargs: the arguments of :class:`GeneralizedRCNN`.
    """

    @configurable
    def __init__(
        self,
        *,
        sem_seg_head: nn.Module,
        combine_on: bool = True,
        combine_overlap_thresh: float = 0.5,
        combine_stuff_area_thresh: float = 4096,
        combine_instances_score_thresh: float = 0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.sem_seg_head = sem_seg_head
        self.combine_on = combine_on
        self.combine_overlap_thresh = combine_overlap_thresh
        self.combine_stuff_area_thresh = combine_stuff_area_thresh
        self.combine_instances_score_thresh = combine_instances_score_thresh

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        combine = cfg.MODEL.PANOPTIC_FPN.COMBINE
        ret.update(
            {
                "combine_on": combine.ENABLED,
                "combine_overlap_thresh": combine.OVERLAP_THRESH,
                "combine_stuff_area_thresh": combine.STUFF_AREA_LIMIT,
                "combine_instances_score_thresh": combine.INSTANCES_CONFIDENCE_THRESH,
            }
        )
        ret["sem_seg_head"] = build_sem_seg_head(cfg, ret["backbone"].output_shape())
        if cfg.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT != 1.0:
            logger.warning("PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT only affects training; it is ignored.")
        return ret

    def forward(self, batched_inputs: List[Dict[str, Tensor]]):
        """One dict per image with ``"sem_seg"`` ((C, H, W) logits), ``"instances"`` and, if
        ``combine_on``, ``"panoptic_seg"``: ``(panoptic_seg, segments_info)``.

        Inputs as :meth:`GeneralizedRCNN.forward`.
        """
        check_inference_mode(self.training, "PanopticFPN")
        return self.inference(batched_inputs)

    def inference(self, batched_inputs: List[Dict[str, Tensor]], do_postprocess: bool = True):
        """Run the model.

        Returns:
            with ``do_postprocess``, the list of dicts of :meth:`forward`; otherwise the raw
            ``(detector_results, sem_seg_results)``: per-image Instances and (N, C, H, W) logits at
            network-input resolution.
        """
        check_inference_mode(self.training, "PanopticFPN")
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        sem_seg_results, _ = self.sem_seg_head(features, None)
        proposals, _ = self.proposal_generator(images, features, None)
        detector_results, _ = self.roi_heads(images, features, proposals, None)

        if not do_postprocess:
            return detector_results, sem_seg_results

        processed_results = []
        for sem_seg_result, detector_result, input_per_image, image_size in zip(
            sem_seg_results, detector_results, batched_inputs, images.image_sizes
        ):
            height = input_per_image.get("height", image_size[0])
            width = input_per_image.get("width", image_size[1])
            sem_seg_r = sem_seg_postprocess(sem_seg_result, image_size, height, width)
            detector_r = detector_postprocess(detector_result, height, width)
            processed_results.append({"sem_seg": sem_seg_r, "instances": detector_r})
            if self.combine_on:
                processed_results[-1]["panoptic_seg"] = combine_semantic_and_instance_outputs(
                    detector_r,
                    sem_seg_r.argmax(dim=0),
                    self.combine_overlap_thresh,
                    self.combine_stuff_area_thresh,
                    self.combine_instances_score_thresh,
                )
        return processed_results


def combine_semantic_and_instance_outputs(
    instance_results: Instances,
    semantic_results: Tensor,
    overlap_threshold: float,
    stuff_area_thresh: float,
    instances_score_thresh: float,
) -> Tuple[Tensor, List[Dict]]:
    """Merge instance and semantic predictions into one panoptic segmentation (the paper's heuristic).

    Instances are pasted by decreasing score, skipping those below ``instances_score_thresh``,
    those with an empty mask, and those whose mask overlaps already pasted segments by more than
    ``overlap_threshold`` of its area (the others only fill unclaimed pixels). Then each semantic
    "stuff" class (label != 0; 0 is the merged "things" class) fills the still unclaimed pixels
    if it covers at least ``stuff_area_thresh`` of them.

    Args:
        instance_results: post-processed instances with ``scores``, ``pred_classes`` and
            full-image ``pred_masks`` (N, H, W).
        semantic_results: (H, W) semantic labels (argmax of the logits).

    Returns:
        panoptic_seg: (H, W) int32 tensor, 0 for void, i for the i-th segment.
        segments_info: per segment, ``{"id", "isthing", "category_id"}`` plus ``"score"`` and
            ``"instance_id"`` for things or ``"area"`` for stuff.
    """
    panoptic_seg = torch.zeros_like(semantic_results, dtype=torch.int32)

    sorted_inds = torch.argsort(-instance_results.scores)

    current_segment_id = 0
    segments_info = []

    instance_masks = instance_results.pred_masks.to(dtype=torch.bool, device=panoptic_seg.device)

    for inst_id in sorted_inds:
        score = instance_results.scores[inst_id].item()
        if score < instances_score_thresh:
            break
        mask = instance_masks[inst_id]  # H, W
        mask_area = mask.sum().item()
        if mask_area == 0:
            continue

        intersect = (mask > 0) & (panoptic_seg > 0)
        intersect_area = intersect.sum().item()
        if intersect_area * 1.0 / mask_area > overlap_threshold:
            continue
        if intersect_area > 0:
            mask = mask & (panoptic_seg == 0)

        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": True,
                "score": score,
                "category_id": instance_results.pred_classes[inst_id].item(),
                "instance_id": inst_id.item(),
            }
        )

    semantic_labels = torch.unique(semantic_results).cpu().tolist()
    for semantic_label in semantic_labels:
        if semantic_label == 0:  # 0 is the special "thing" class
            continue
        mask = (semantic_results == semantic_label) & (panoptic_seg == 0)
        mask_area = mask.sum().item()
        if mask_area < stuff_area_thresh:
            continue

        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {
                "id": current_segment_id,
                "isthing": False,
                "category_id": semantic_label,
                "area": mask_area,
            }
        )

    return panoptic_seg, segments_info
