"""R-CNN meta-architectures (detectron2.modeling.meta_arch.rcnn): GeneralizedRCNN, ProposalNetwork.

Inference only: calling a model in training mode raises ``NotImplementedError``.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ...config.configurable import configurable
from ...structures import ImageList, Instances
from ..backbone import Backbone, build_backbone
from ..proposal_generator import build_proposal_generator
from ..roi_heads import build_roi_heads
from .build import META_ARCH_REGISTRY
from .image_io import (
    check_inference_mode,
    normalize_and_batch,
    postprocess_detections,
    register_pixel_stats,
)

__all__ = ["GeneralizedRCNN", "ProposalNetwork"]


@META_ARCH_REGISTRY.register()
class GeneralizedRCNN(nn.Module):
    """Backbone -> proposal generator -> per-region heads (Faster/Mask/Keypoint R-CNN).

    Args:
        backbone: a :class:`Backbone`.
        proposal_generator: a module that makes proposals from the features (None when proposals
            are given in the inputs as ``"proposals"``).
        roi_heads: a module that predicts per-region outputs.
        pixel_mean, pixel_std: per-channel normalisation of the input images.
        input_format: channel order of the input ("BGR", "RGB"...), for visualisation.
        vis_period: training visualisation period; kept for config compatibility.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: Optional[nn.Module],
        roi_heads: nn.Module,
        pixel_mean: Tuple[float, ...],
        pixel_std: Tuple[float, ...],
        input_format: Optional[str] = None,
        vis_period: int = 0,
    ):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        self.roi_heads = roi_heads

        self.input_format = input_format
        self.vis_period = vis_period
        if vis_period > 0 and input_format is None:
            raise ValueError("GeneralizedRCNN: vis_period > 0 needs input_format, got None")
        register_pixel_stats(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "roi_heads": build_roi_heads(cfg, backbone.output_shape()),
            "input_format": cfg.INPUT.FORMAT,
            "vis_period": cfg.VIS_PERIOD,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Run inference; see :meth:`inference`.

        Args:
            batched_inputs: one dict per image with ``"image"``: a (C, H, W) tensor in
                ``input_format`` channel order, already resized; optional ``"height"`` and
                ``"width"``: the output resolution (defaults to the image's own); optional
                ``"proposals"`` when the model has no proposal generator.

        Returns:
            One dict per image: ``{"instances": Instances}`` at the output resolution.
        """
        check_inference_mode(self.training, "GeneralizedRCNN")
        return self.inference(batched_inputs)

    def inference(
        self,
        batched_inputs: List[Dict[str, torch.Tensor]],
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        """Detect objects.

        Args:
            batched_inputs: as in :meth:`forward`.
            detected_instances: if given, skip detection and only run the other heads (masks,
                keypoints) on these boxes, one :class:`Instances` per image.
            do_postprocess: rescale outputs to the requested resolution (see
                :func:`detector_postprocess`); otherwise return the raw per-image
                :class:`Instances` at network-input resolution.
        """
        check_inference_mode(self.training, "GeneralizedRCNN")
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)

        if detected_instances is None:
            if self.proposal_generator is not None:
                proposals, _ = self.proposal_generator(images, features, None)
            else:
                if "proposals" not in batched_inputs[0]:
                    raise ValueError(
                        "GeneralizedRCNN: the model has no proposal_generator, expected "
                        "'proposals' in every input dict"
                    )
                proposals = [x["proposals"].to(self.device) for x in batched_inputs]
            results, _ = self.roi_heads(images, features, proposals, None)
        else:
            detected_instances = [x.to(self.device) for x in detected_instances]
            results = self.roi_heads.forward_with_given_boxes(features, detected_instances)

        if do_postprocess:
            assert not torch.jit.is_scripting(), "Scripting is not supported for postprocess."
            return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
        return results

    def preprocess_image(self, batched_inputs: List[Dict[str, torch.Tensor]]) -> ImageList:
        """Normalise, pad and batch the input images."""
        return normalize_and_batch(
            batched_inputs,
            self.pixel_mean,
            self.pixel_std,
            self.backbone.size_divisibility,
            self.backbone.padding_constraints,
        )

    @staticmethod
    def _postprocess(
        instances: List[Instances],
        batched_inputs: List[Dict[str, torch.Tensor]],
        image_sizes: List[Tuple[int, int]],
    ) -> List[Dict[str, Instances]]:
        """Rescale raw per-image results to the inputs' ``"height"``/``"width"``."""
        return postprocess_detections(instances, batched_inputs, image_sizes, "instances")


@META_ARCH_REGISTRY.register()
class ProposalNetwork(nn.Module):
    """Backbone -> proposal generator only (RPN-only models); outputs ``"proposals"``."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        proposal_generator: nn.Module,
        pixel_mean: Tuple[float, ...],
        pixel_std: Tuple[float, ...],
    ):
        super().__init__()
        self.backbone = backbone
        self.proposal_generator = proposal_generator
        register_pixel_stats(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "proposal_generator": build_proposal_generator(cfg, backbone.output_shape()),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]) -> List[Dict[str, Instances]]:
        """Inputs as :meth:`GeneralizedRCNN.forward`; one ``{"proposals": Instances}`` per image."""
        check_inference_mode(self.training, "ProposalNetwork")
        images = normalize_and_batch(
            batched_inputs,
            self.pixel_mean,
            self.pixel_std,
            self.backbone.size_divisibility,
            self.backbone.padding_constraints,
        )
        features = self.backbone(images.tensor)
        proposals, _ = self.proposal_generator(images, features, None)
        return postprocess_detections(proposals, batched_inputs, images.image_sizes, "proposals")
