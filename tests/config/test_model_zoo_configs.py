"""Every bundled YAML merges into get_cfg(), with upstream's values."""

import glob
import os

import pytest

from detectron2_export.config import get_cfg

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")
EXPECTED_FILES = [
    "Base-RCNN-FPN.yaml",
    "Base-RCNN-C4.yaml",
    "Base-RCNN-DilatedC5.yaml",
    "Base-RetinaNet.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml",
    "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml",
    "COCO-Detection/retinanet_R_50_FPN_3x.yaml",
    "COCO-Keypoints/Base-Keypoint-RCNN-FPN.yaml",
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml",
    "COCO-PanopticSegmentation/Base-Panoptic-FPN.yaml",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml",
    "shapes/mask_rcnn_R_18_FPN_shapes.yaml",
]
R50 = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
FPN_FEATURES = ["p2", "p3", "p4", "p5"]
ZOO_3X_SCHEDULE = {"SOLVER.STEPS": (210000, 250000), "SOLVER.MAX_ITER": 270000}


def load(name):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(CONFIGS, name))
    return cfg


def value(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def test_all_expected_files_exist():
    found = {os.path.relpath(p, CONFIGS) for p in glob.glob(os.path.join(CONFIGS, "**", "*.yaml"), recursive=True)}
    assert set(EXPECTED_FILES) <= found


@pytest.mark.parametrize("name", sorted(
    os.path.relpath(p, CONFIGS) for p in glob.glob(os.path.join(CONFIGS, "**", "*.yaml"), recursive=True)))
def test_every_yaml_merges(name):
    cfg = load(name)
    assert cfg.VERSION == 2


SPOT_CHECKS = {
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml": {
        "MODEL.META_ARCHITECTURE": "GeneralizedRCNN", "MODEL.MASK_ON": True, "MODEL.RESNETS.DEPTH": 50,
        "MODEL.WEIGHTS": R50, "MODEL.BACKBONE.NAME": "build_resnet_fpn_backbone",
        "MODEL.RESNETS.OUT_FEATURES": ["res2", "res3", "res4", "res5"], "MODEL.ROI_HEADS.IN_FEATURES": FPN_FEATURES,
        "MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64], [128], [256], [512]],
        "MODEL.RPN.IN_FEATURES": FPN_FEATURES + ["p6"], "MODEL.RPN.PRE_NMS_TOPK_TEST": 1000,
        "MODEL.RPN.POST_NMS_TOPK_TEST": 1000, "MODEL.ROI_HEADS.NAME": "StandardROIHeads",
        "MODEL.ROI_BOX_HEAD.NAME": "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_FC": 2,
        "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION": 7, "MODEL.ROI_MASK_HEAD.NUM_CONV": 4,
        "DATASETS.TRAIN": ("coco_2017_train",), "DATASETS.TEST": ("coco_2017_val",),
        "INPUT.MIN_SIZE_TRAIN": (640, 672, 704, 736, 768, 800), "SOLVER.BASE_LR": 0.02, **ZOO_3X_SCHEDULE,
    },
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml": {
        "MODEL.MASK_ON": True, "MODEL.ROI_HEADS.NAME": "Res5ROIHeads", "MODEL.BACKBONE.NAME": "build_resnet_backbone",
        "MODEL.RESNETS.OUT_FEATURES": ["res4"], "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000, "MODEL.WEIGHTS": R50,
        **ZOO_3X_SCHEDULE,
    },
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml": {
        "MODEL.RESNETS.DEPTH": 101, "MODEL.WEIGHTS": "detectron2://ImageNetPretrained/MSRA/R-101.pkl",
    },
    "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x.yaml": {
        "MODEL.RESNETS.DEPTH": 101, "MODEL.RESNETS.NUM_GROUPS": 32, "MODEL.RESNETS.WIDTH_PER_GROUP": 8,
        "MODEL.RESNETS.STRIDE_IN_1X1": False, "MODEL.PIXEL_STD": [57.375, 57.120, 58.395],
        "MODEL.WEIGHTS": "detectron2://ImageNetPretrained/FAIR/X-101-32x8d.pkl",
    },
    "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml": {"MODEL.MASK_ON": False, "MODEL.RESNETS.DEPTH": 50},
    "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml": {
        "MODEL.MASK_ON": False, "MODEL.RESNETS.RES5_DILATION": 2, "MODEL.RESNETS.OUT_FEATURES": ["res5"],
        "MODEL.RPN.IN_FEATURES": ["res5"], "MODEL.ROI_HEADS.IN_FEATURES": ["res5"],
        "MODEL.ROI_HEADS.NAME": "StandardROIHeads", "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000,
    },
    "COCO-Detection/retinanet_R_50_FPN_3x.yaml": {
        "MODEL.META_ARCHITECTURE": "RetinaNet", "MODEL.BACKBONE.NAME": "build_retinanet_resnet_fpn_backbone",
        "MODEL.RESNETS.OUT_FEATURES": ["res3", "res4", "res5"], "MODEL.FPN.IN_FEATURES": ["res3", "res4", "res5"],
        "MODEL.RETINANET.SMOOTH_L1_LOSS_BETA": 0.0, "SOLVER.BASE_LR": 0.01, **ZOO_3X_SCHEDULE,
    },
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml": {
        "MODEL.KEYPOINT_ON": True, "MODEL.MASK_ON": False, "MODEL.ROI_HEADS.NUM_CLASSES": 1,
        "MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA": 0.5, "MODEL.RPN.POST_NMS_TOPK_TRAIN": 1500,
        "DATASETS.TEST": ("keypoints_coco_2017_val",), **ZOO_3X_SCHEDULE,
    },
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml": {
        "MODEL.META_ARCHITECTURE": "PanopticFPN", "MODEL.MASK_ON": True, "MODEL.SEM_SEG_HEAD.LOSS_WEIGHT": 0.5,
        "DATALOADER.FILTER_EMPTY_ANNOTATIONS": False, "DATASETS.TEST": ("coco_2017_val_panoptic_separated",),
        **ZOO_3X_SCHEDULE,
    },
    "shapes/mask_rcnn_R_18_FPN_shapes.yaml": {
        "MODEL.MASK_ON": True, "MODEL.WEIGHTS": "", "MODEL.RESNETS.DEPTH": 18, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
        "MODEL.RESNETS.STRIDE_IN_1X1": False, "MODEL.FPN.OUT_CHANNELS": 128, "MODEL.ROI_HEADS.NUM_CLASSES": 3,
        "MODEL.ROI_BOX_HEAD.FC_DIM": 256, "MODEL.ROI_MASK_HEAD.CONV_DIM": 128, "INPUT.MIN_SIZE_TEST": 288,
        "INPUT.MAX_SIZE_TEST": 384, "DATASETS.TRAIN": (), "DATASETS.TEST": ("shapes_val",),
        "MODEL.ROI_HEADS.IN_FEATURES": FPN_FEATURES,
    },
}


@pytest.mark.parametrize("name", sorted(SPOT_CHECKS))
def test_upstream_values(name):
    cfg = load(name)
    for key, expected in SPOT_CHECKS[name].items():
        assert value(cfg, key) == expected, key
        assert type(value(cfg, key)) is type(expected), key


def test_retinanet_anchor_sizes_are_three_octave_scales():
    sizes = load("COCO-Detection/retinanet_R_50_FPN_3x.yaml").MODEL.ANCHOR_GENERATOR.SIZES
    assert len(sizes) == 5
    for base, level in zip((32, 64, 128, 256, 512), sizes):
        assert level == pytest.approx([base, base * 2 ** (1 / 3), base * 2 ** (2 / 3)], rel=1e-12)
