"""Meta-architectures (detectron2.modeling.meta_arch): whole models, built by ``build_model(cfg)``."""

from .build import META_ARCH_REGISTRY, build_model
from .dense_detector import DenseDetector
from .fcos import FCOS
from .panoptic_fpn import PanopticFPN
from .rcnn import GeneralizedRCNN, ProposalNetwork
from .retinanet import RetinaNet
from .semantic_seg import SEM_SEG_HEADS_REGISTRY, SemanticSegmentor, SemSegFPNHead, build_sem_seg_head

__all__ = [
    "DenseDetector",
    "FCOS",
    "GeneralizedRCNN",
    "META_ARCH_REGISTRY",
    "PanopticFPN",
    "ProposalNetwork",
    "RetinaNet",
    "SEM_SEG_HEADS_REGISTRY",
    "SemSegFPNHead",
    "SemanticSegmentor",
    "build_model",
    "build_sem_seg_head",
]
