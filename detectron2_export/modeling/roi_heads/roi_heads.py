"""Second-stage (per-region) heads of a generalized R-CNN (detectron2 v0.6), inference only.

``Res5ROIHeads`` is the C4 design (box and mask heads share a res5 stage run on pooled regions);
``StandardROIHeads`` the FPN/DC5 design (separate poolers and heads for boxes, masks, keypoints).
At inference, masks and keypoints are predicted only for the final detections.
"""

import inspect
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from detectron2_export.config import configurable
from detectron2_export.errors import ConfigError, ModelInputError
from detectron2_export.layers import ShapeSpec
from detectron2_export.structures import Boxes, ImageList, Instances
from detectron2_export.utils.registry import Registry
from detectron2_export.utils.training_only import training_only_function

from ..backbone.resnet import BottleneckBlock, ResNet
from ..poolers import ROIPooler
from .box_head import build_box_head
from .fast_rcnn import FastRCNNOutputLayers
from .keypoint_head import build_keypoint_head
from .mask_head import build_mask_head

__all__ = [
    "ROI_HEADS_REGISTRY", "build_roi_heads", "ROIHeads", "Res5ROIHeads", "StandardROIHeads",
    "select_foreground_proposals", "select_proposals_with_visible_keypoints",
]

select_foreground_proposals = training_only_function(__name__, "select_foreground_proposals")
select_proposals_with_visible_keypoints = training_only_function(__name__, "select_proposals_with_visible_keypoints")

ROI_HEADS_REGISTRY = Registry("ROI_HEADS")
ROI_HEADS_REGISTRY.__doc__ = """
Registry for ROI heads in a generalized R-CNN model.
ROIHeads take feature maps and region proposals, and
perform per-region computation.

The registered object will be called with `obj(cfg, input_shape)`.
The call is expected to return an :class:`ROIHeads`.
"""


def build_roi_heads(cfg, input_shape):
    """Build the ROI heads named by ``cfg.MODEL.ROI_HEADS.NAME``."""
    name = cfg.MODEL.ROI_HEADS.NAME
    return ROI_HEADS_REGISTRY.get(name)(cfg, input_shape)


def _pooler_and_head_input(head_cfg, in_features: List[str], input_shape: Dict[str, ShapeSpec]):
    """The pooler a mask/keypoint head config asks for, and the input shape of that head.

    ``head_cfg`` is ``cfg.MODEL.ROI_{MASK,KEYPOINT}_HEAD``. With an empty ``POOLER_TYPE`` there is
    no pooler: the head receives the feature maps themselves, and their shapes by name.
    """
    pooler_type = head_cfg.POOLER_TYPE
    if not pooler_type:
        return None, {f: input_shape[f] for f in in_features}
    resolution = head_cfg.POOLER_RESOLUTION
    pooler = ROIPooler(
        output_size=resolution,
        scales=tuple(1.0 / input_shape[k].stride for k in in_features),
        sampling_ratio=head_cfg.POOLER_SAMPLING_RATIO,
        pooler_type=pooler_type,
    )
    in_channels = input_shape[in_features[0]].channels
    return pooler, ShapeSpec(channels=in_channels, width=resolution, height=resolution)


def _box_pooler(cfg, input_shape: Dict[str, ShapeSpec]) -> Tuple[List[str], ROIPooler, ShapeSpec]:
    """The box pooler ``cfg.MODEL.ROI_BOX_HEAD`` asks for over ``ROI_HEADS.IN_FEATURES``, and the
    shape of the pooled regions (the box head's input; shared by every cascade stage)."""
    in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
    pooler_resolution = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
    # One box head is shared by all levels (FPN), so they must have the same channels.
    in_channels = [input_shape[f].channels for f in in_features]
    if len(set(in_channels)) != 1:
        raise ConfigError(
            f"MODEL.ROI_HEADS.IN_FEATURES={list(in_features)} have channels {in_channels}, expected one "
            "channel count (all levels share the box head)"
        )
    box_pooler = ROIPooler(
        output_size=pooler_resolution,
        scales=tuple(1.0 / input_shape[k].stride for k in in_features),
        sampling_ratio=cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO,
        pooler_type=cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE,
    )
    pooled_shape = ShapeSpec(channels=in_channels[0], height=pooler_resolution, width=pooler_resolution)
    return in_features, box_pooler, pooled_shape


class ROIHeads(torch.nn.Module):
    """Base of the per-region computation of an R-CNN: crop regions, extract per-region
    features, predict per region. Holds the settings shared by all variants.

    The training-only arguments (proposal sampling and matching) are accepted and stored so that
    subclasses written against detectron2 build unchanged.
    """

    @configurable
    def __init__(
        self,
        *,
        num_classes: int,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        proposal_matcher: Optional[object] = None,
        proposal_append_gt: bool = True,
    ):
        """
        Args:
            num_classes: number of foreground classes.
            batch_size_per_image, positive_fraction, proposal_matcher, proposal_append_gt:
                training only; stored, unused.
        """
        super().__init__()
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.num_classes = num_classes
        self.proposal_matcher = proposal_matcher
        self.proposal_append_gt = proposal_append_gt

    @classmethod
    def from_config(cls, cfg):
        return {
            "batch_size_per_image": cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION,
            "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "proposal_append_gt": cfg.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT,
        }

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor]]:
        """
        Args:
            images: the input images (unused by the standard heads).
            features: feature maps by name, each (N, C, Hi, Wi).
            proposals: per image, Instances with ``proposal_boxes`` and ``objectness_logits``.
            targets: training only; must be None.

        Returns:
            list[Instances]: per image, the detections.
            dict[str, Tensor]: the losses, empty at inference.
        """
        raise NotImplementedError()


@torch.jit.unused
def _check_given_boxes(heads: nn.Module, instances: List[Instances]) -> None:
    """forward_with_given_boxes runs at inference on detections, not proposals."""
    if heads.training:
        raise ModelInputError(f"{type(heads).__name__}.forward_with_given_boxes in training mode, expected eval()")
    if not (instances[0].has("pred_boxes") and instances[0].has("pred_classes")):
        raise ModelInputError(
            f"{type(heads).__name__}.forward_with_given_boxes: instances with fields "
            f"{sorted(instances[0].get_fields())}, expected pred_boxes and pred_classes"
        )


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeads(ROIHeads):
    """The ROI heads of a "C4" R-CNN: regions are pooled from one feature map and go through a
    ResNet res5 stage (``res5``), shared by the box predictor and the mask head."""

    @configurable
    def __init__(
        self,
        *,
        in_features: List[str],
        pooler: ROIPooler,
        res5: nn.Module,
        box_predictor: nn.Module,
        mask_head: Optional[nn.Module] = None,
        **kwargs,
    ):
        """
        Args:
            in_features: the one feature map to pool from.
            pooler: pools the regions.
            res5: the res5 stage (a module, or a list of blocks made into ``nn.Sequential``).
            box_predictor: class scores and box deltas from the averaged res5 output.
            mask_head: if given, predicts masks from the res5 output of the detected boxes.
            kwargs: passed to :class:`ROIHeads`.
        """
        super().__init__(**kwargs)
        self.in_features = in_features
        self.pooler = pooler
        if isinstance(res5, (list, tuple)):
            res5 = nn.Sequential(*res5)
        self.res5 = res5
        self.box_predictor = box_predictor
        self.mask_on = mask_head is not None
        if self.mask_on:
            self.mask_head = mask_head

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg)
        in_features = ret["in_features"] = cfg.MODEL.ROI_HEADS.IN_FEATURES
        pooler_resolution = cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
        pooler_type = cfg.MODEL.ROI_BOX_HEAD.POOLER_TYPE
        pooler_scales = (1.0 / input_shape[in_features[0]].stride,)
        sampling_ratio = cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO
        mask_on = cfg.MODEL.MASK_ON
        if cfg.MODEL.KEYPOINT_ON:
            raise ConfigError("MODEL.KEYPOINT_ON=True, expected False: Res5ROIHeads has no keypoint head")
        if len(in_features) != 1:
            raise ConfigError(
                f"MODEL.ROI_HEADS.IN_FEATURES={list(in_features)}, expected one feature for Res5ROIHeads"
            )

        ret["pooler"] = ROIPooler(
            output_size=pooler_resolution,
            scales=pooler_scales,
            sampling_ratio=sampling_ratio,
            pooler_type=pooler_type,
        )
        ret["res5"], out_channels = cls._build_res5_block(cfg)
        ret["box_predictor"] = FastRCNNOutputLayers(
            cfg, ShapeSpec(channels=out_channels, height=1, width=1)
        )
        if mask_on:
            ret["mask_head"] = build_mask_head(
                cfg,
                ShapeSpec(channels=out_channels, width=pooler_resolution, height=pooler_resolution),
            )
        return ret

    @classmethod
    def _build_res5_block(cls, cfg):
        """The res5 stage of the backbone's ResNet (3 bottleneck blocks, first of stride 2)."""
        stage_channel_factor = 2**3  # res5 is 8x res2
        num_groups = cfg.MODEL.RESNETS.NUM_GROUPS
        width_per_group = cfg.MODEL.RESNETS.WIDTH_PER_GROUP
        bottleneck_channels = num_groups * width_per_group * stage_channel_factor
        out_channels = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * stage_channel_factor
        stride_in_1x1 = cfg.MODEL.RESNETS.STRIDE_IN_1X1
        norm = cfg.MODEL.RESNETS.NORM
        if cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE[-1]:
            raise ConfigError(
                "MODEL.RESNETS.DEFORM_ON_PER_STAGE[-1]=True: Deformable conv is not yet supported in res5 head."
            )

        blocks = ResNet.make_stage(
            BottleneckBlock,
            3,
            stride_per_block=[2, 1, 1],
            in_channels=out_channels // 2,
            bottleneck_channels=bottleneck_channels,
            out_channels=out_channels,
            num_groups=num_groups,
            norm=norm,
            stride_in_1x1=stride_in_1x1,
        )
        return nn.Sequential(*blocks), out_channels

    def _shared_roi_transform(self, features: List[torch.Tensor], boxes: List[Boxes]):
        x = self.pooler(features, boxes)
        return self.res5(x)

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ):
        """See :meth:`ROIHeads.forward`."""
        del images
        if self.training:
            raise NotImplementedError(
                "Res5ROIHeads: training=True, expected eval mode "
                "(detectron2_export is inference-only)"
            )
        del targets

        proposal_boxes = [x.proposal_boxes for x in proposals]
        box_features = self._shared_roi_transform(
            [features[f] for f in self.in_features], proposal_boxes
        )
        predictions = self.box_predictor(box_features.mean(dim=[2, 3]))
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        pred_instances = self.forward_with_given_boxes(features, pred_instances)
        return pred_instances, {}

    def forward_with_given_boxes(
        self, features: Dict[str, torch.Tensor], instances: List[Instances]
    ) -> List[Instances]:
        """Predict masks for given detections (fields ``pred_boxes`` and ``pred_classes``).

        Returns:
            list[Instances]: the same instances, with ``pred_masks`` when the mask head is on.
        """
        if not torch.jit.is_scripting():
            _check_given_boxes(self, instances)

        if self.mask_on:
            feature_list = [features[f] for f in self.in_features]
            x = self._shared_roi_transform(feature_list, [x.pred_boxes for x in instances])
            return self.mask_head(x, instances)
        return instances


@ROI_HEADS_REGISTRY.register()
class StandardROIHeads(ROIHeads):
    """The ROI heads of FPN and DC5 R-CNNs: each task (box, mask, keypoint) has its own pooler
    and head. Detections come from the box head; masks and keypoints are then predicted on the
    detected boxes only."""

    @configurable
    def __init__(
        self,
        *,
        box_in_features: List[str],
        box_pooler: ROIPooler,
        box_head: nn.Module,
        box_predictor: nn.Module,
        mask_in_features: Optional[List[str]] = None,
        mask_pooler: Optional[ROIPooler] = None,
        mask_head: Optional[nn.Module] = None,
        keypoint_in_features: Optional[List[str]] = None,
        keypoint_pooler: Optional[ROIPooler] = None,
        keypoint_head: Optional[nn.Module] = None,
        train_on_pred_boxes: bool = False,
        **kwargs,
    ):
        """
        Args:
            box_in_features: feature maps the boxes are pooled from.
            box_pooler: pools the proposals.
            box_head: per-region features from the pooled regions.
            box_predictor: class scores and box deltas from the box head's output.
            mask_in_features: feature maps for the mask head; None turns masks off.
            mask_pooler: pools the detected boxes; None gives the head the raw feature maps.
            mask_head: predicts masks.
            keypoint_in_features, keypoint_pooler, keypoint_head: as for masks.
            train_on_pred_boxes: training only; stored, unused.
            kwargs: passed to :class:`ROIHeads`.
        """
        super().__init__(**kwargs)
        # in_features kept for backward compatibility, as in detectron2
        self.in_features = self.box_in_features = box_in_features
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.box_predictor = box_predictor

        self.mask_on = mask_in_features is not None
        if self.mask_on:
            self.mask_in_features = mask_in_features
            self.mask_pooler = mask_pooler
            self.mask_head = mask_head

        self.keypoint_on = keypoint_in_features is not None
        if self.keypoint_on:
            self.keypoint_in_features = keypoint_in_features
            self.keypoint_pooler = keypoint_pooler
            self.keypoint_head = keypoint_head

        self.train_on_pred_boxes = train_on_pred_boxes

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg)
        ret["train_on_pred_boxes"] = cfg.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES
        # A subclass may override an _init_*_head as a plain method (old detectron2 style): it is
        # then not a bound classmethod here, and that subclass builds the part itself.
        if inspect.ismethod(cls._init_box_head):
            ret.update(cls._init_box_head(cfg, input_shape))
        if inspect.ismethod(cls._init_mask_head):
            ret.update(cls._init_mask_head(cfg, input_shape))
        if inspect.ismethod(cls._init_keypoint_head):
            ret.update(cls._init_keypoint_head(cfg, input_shape))
        return ret

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        in_features, box_pooler, pooled_shape = _box_pooler(cfg, input_shape)
        # "box head" and "box predictor" are split for historical reasons only.
        box_head = build_box_head(cfg, pooled_shape)
        box_predictor = FastRCNNOutputLayers(cfg, box_head.output_shape)
        return {
            "box_in_features": in_features,
            "box_pooler": box_pooler,
            "box_head": box_head,
            "box_predictor": box_predictor,
        }

    @classmethod
    def _init_mask_head(cls, cfg, input_shape):
        if not cfg.MODEL.MASK_ON:
            return {}
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        pooler, shape = _pooler_and_head_input(cfg.MODEL.ROI_MASK_HEAD, in_features, input_shape)
        return {
            "mask_in_features": in_features,
            "mask_pooler": pooler,
            "mask_head": build_mask_head(cfg, shape),
        }

    @classmethod
    def _init_keypoint_head(cls, cfg, input_shape):
        if not cfg.MODEL.KEYPOINT_ON:
            return {}
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        pooler, shape = _pooler_and_head_input(
            cfg.MODEL.ROI_KEYPOINT_HEAD, in_features, input_shape
        )
        return {
            "keypoint_in_features": in_features,
            "keypoint_pooler": pooler,
            "keypoint_head": build_keypoint_head(cfg, shape),
        }

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ) -> Tuple[List[Instances], Dict[str, torch.Tensor]]:
        """See :meth:`ROIHeads.forward`."""
        del images
        if self.training:
            raise NotImplementedError(
                f"{type(self).__name__}: training=True, expected eval mode "
                "(detectron2_export is inference-only)"
            )
        del targets

        pred_instances = self._forward_box(features, proposals)
        # Cascaded prediction: masks and keypoints only for the final, top-scoring detections.
        pred_instances = self.forward_with_given_boxes(features, pred_instances)
        return pred_instances, {}

    def forward_with_given_boxes(
        self, features: Dict[str, torch.Tensor], instances: List[Instances]
    ) -> List[Instances]:
        """Run the mask and keypoint heads on given detections.

        Args:
            features: feature maps by name.
            instances: per image, Instances with ``pred_boxes`` and ``pred_classes``.

        Returns:
            list[Instances]: the same instances with ``pred_masks`` / ``pred_keypoints`` added
            when the corresponding head is on.
        """
        if not torch.jit.is_scripting():
            _check_given_boxes(self, instances)

        instances = self._forward_mask(features, instances)
        instances = self._forward_keypoint(features, instances)
        return instances

    def _forward_box(self, features: Dict[str, torch.Tensor], proposals: List[Instances]):
        """Pool the proposals, run box head and predictor, and post-process into detections."""
        features = [features[f] for f in self.box_in_features]
        box_features = self.box_pooler(features, [x.proposal_boxes for x in proposals])
        box_features = self.box_head(box_features)
        predictions = self.box_predictor(box_features)
        del box_features
        pred_instances, _ = self.box_predictor.inference(predictions, proposals)
        return pred_instances

    def _forward_mask(self, features: Dict[str, torch.Tensor], instances: List[Instances]):
        """Add ``pred_masks`` to the detections (unchanged if the mask head is off)."""
        if not self.mask_on:
            return instances

        if self.mask_pooler is not None:
            features = [features[f] for f in self.mask_in_features]
            boxes = [x.pred_boxes for x in instances]
            features = self.mask_pooler(features, boxes)
        else:
            features = {f: features[f] for f in self.mask_in_features}
        return self.mask_head(features, instances)

    def _forward_keypoint(self, features: Dict[str, torch.Tensor], instances: List[Instances]):
        """Add ``pred_keypoints`` and ``pred_keypoint_heatmaps`` (unchanged if the head is off)."""
        if not self.keypoint_on:
            return instances

        if self.keypoint_pooler is not None:
            features = [features[f] for f in self.keypoint_in_features]
            boxes = [x.pred_boxes for x in instances]
            features = self.keypoint_pooler(features, boxes)
        else:
            features = {f: features[f] for f in self.keypoint_in_features}
        return self.keypoint_head(features, instances)
