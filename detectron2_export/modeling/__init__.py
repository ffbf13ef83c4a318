"""Models (detectron2.modeling): meta-architectures, backbones, heads and their registries.

Importing this package registers every built-in component, so ``build_model(cfg)`` can find it by
the names used in detectron2's configs. Register your own with e.g. ``@BACKBONE_REGISTRY.register()``.
"""

from ..layers import ShapeSpec  # noqa: F401  (importable from here, as in detectron2)
from .anchor_generator import ANCHOR_GENERATOR_REGISTRY, build_anchor_generator
from .backbone import (
    BACKBONE_REGISTRY,
    FPN,
    Backbone,
    ResNet,
    ResNetBlockBase,
    build_backbone,
    build_resnet_backbone,
    make_stage,
)
from .meta_arch import (
    META_ARCH_REGISTRY,
    SEM_SEG_HEADS_REGISTRY,
    GeneralizedRCNN,
    PanopticFPN,
    ProposalNetwork,
    RetinaNet,
    SemanticSegmentor,
    build_model,
    build_sem_seg_head,
)
from .mmdet_wrapper import MMDetBackbone, MMDetDetector
from .postprocessing import detector_postprocess
from .proposal_generator import (
    PROPOSAL_GENERATOR_REGISTRY,
    RPN_HEAD_REGISTRY,
    build_proposal_generator,
    build_rpn_head,
)
from .roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    ROI_KEYPOINT_HEAD_REGISTRY,
    ROI_MASK_HEAD_REGISTRY,
    BaseKeypointRCNNHead,
    BaseMaskRCNNHead,
    FastRCNNOutputLayers,
    ROIHeads,
    StandardROIHeads,
    build_box_head,
    build_keypoint_head,
    build_mask_head,
    build_roi_heads,
)

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "build_anchor_generator",
    "BACKBONE_REGISTRY",
    "FPN",
    "Backbone",
    "ResNet",
    "ResNetBlockBase",
    "build_backbone",
    "build_resnet_backbone",
    "make_stage",
    "META_ARCH_REGISTRY",
    "SEM_SEG_HEADS_REGISTRY",
    "GeneralizedRCNN",
    "PanopticFPN",
    "ProposalNetwork",
    "RetinaNet",
    "SemanticSegmentor",
    "build_model",
    "build_sem_seg_head",
    "detector_postprocess",
    "MMDetBackbone",
    "MMDetDetector",
    "PROPOSAL_GENERATOR_REGISTRY",
    "RPN_HEAD_REGISTRY",
    "build_proposal_generator",
    "build_rpn_head",
    "ROI_BOX_HEAD_REGISTRY",
    "ROI_HEADS_REGISTRY",
    "ROI_KEYPOINT_HEAD_REGISTRY",
    "ROI_MASK_HEAD_REGISTRY",
    "BaseKeypointRCNNHead",
    "BaseMaskRCNNHead",
    "FastRCNNOutputLayers",
    "ROIHeads",
    "StandardROIHeads",
    "build_box_head",
    "build_keypoint_head",
    "build_mask_head",
    "build_roi_heads",
]
