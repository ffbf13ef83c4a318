"""detectron2's default config: every key and default value of ``detectron2/config/defaults.py``.

Key names and values are those of upstream v0.6, plus the few keys added after v0.6
(marked below) so that newer upstream YAMLs merge too. Options read only by training code are
kept because model-zoo YAMLs set them (yacs refuses unknown keys). Naming convention (upstream's):
an option used by both training and testing is suffixed ``_TRAIN`` / ``_TEST``.
"""

from __future__ import annotations

from .config import CfgNode as CN

__all__ = ["_C"]

_C = CN()

# Config format version; files with another VERSION need an upgrade step.
_C.VERSION = 2

# ------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.LOAD_PROPOSALS = False
_C.MODEL.MASK_ON = False
_C.MODEL.KEYPOINT_ON = False
_C.MODEL.DEVICE = "cuda"
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
# Checkpoint to load: a local path, a URL or a detectron2:// model-zoo name ("" = none).
_C.MODEL.WEIGHTS = ""
# Per-channel normalisation of the input, in INPUT.FORMAT order (BGR: ImageNet means).
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
# 1.0 for MSRA / Detectron1 models, whose std is folded into conv1; ImageNet std is
# [57.375, 57.120, 58.395] for models trained from torchvision-style weights.
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]

# ------------------------------------------------------------------------------------------------
# Input
# ------------------------------------------------------------------------------------------------
_C.INPUT = CN()
# Shortest-edge sizes (ResizeShortestEdge) for training; sampled by "choice" or "range".
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 1333
# Shortest edge at test time (0 disables the resize) and the cap on the longest edge.
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
# Training flip augmentation: "horizontal", "vertical" or "none".
_C.INPUT.RANDOM_FLIP = "horizontal"
# Training crop augmentation.
_C.INPUT.CROP = CN({"ENABLED": False})
_C.INPUT.CROP.TYPE = "relative_range"
_C.INPUT.CROP.SIZE = [0.9, 0.9]
# Channel order the model expects: a PIL mode ("RGB", ...) or "BGR".
_C.INPUT.FORMAT = "BGR"
# Ground-truth mask format for training: "polygon" or "bitmask".
_C.INPUT.MASK_FORMAT = "polygon"

# ------------------------------------------------------------------------------------------------
# Datasets (names registered in DatasetCatalog) and precomputed proposals
# ------------------------------------------------------------------------------------------------
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.PROPOSAL_FILES_TRAIN = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN = 2000
_C.DATASETS.TEST = ()
_C.DATASETS.PROPOSAL_FILES_TEST = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1000

# ------------------------------------------------------------------------------------------------
# Data loader
# ------------------------------------------------------------------------------------------------
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
# Batch only images of the same orientation together.
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
# "TrainingSampler" or "RepeatFactorTrainingSampler" (with REPEAT_THRESHOLD).
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
# Drop training images without annotations.
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True

# ------------------------------------------------------------------------------------------------
# Backbone
# ------------------------------------------------------------------------------------------------
_C.MODEL.BACKBONE = CN()
# A name in BACKBONE_REGISTRY.
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Number of leading ResNet stages (stem = 1) whose weights are frozen.
_C.MODEL.BACKBONE.FREEZE_AT = 2

# ------------------------------------------------------------------------------------------------
# FPN
# ------------------------------------------------------------------------------------------------
_C.MODEL.FPN = CN()
# Backbone features fed to FPN, with contiguous power-of-2 strides, e.g. res2..res5.
_C.MODEL.FPN.IN_FEATURES = []
_C.MODEL.FPN.OUT_CHANNELS = 256
# "" (no norm) or "GN".
_C.MODEL.FPN.NORM = ""
# How top-down and lateral features are fused: "sum" or "avg".
_C.MODEL.FPN.FUSE_TYPE = "sum"

# ------------------------------------------------------------------------------------------------
# Proposal generator
# ------------------------------------------------------------------------------------------------
_C.MODEL.PROPOSAL_GENERATOR = CN()
# "RPN", "RRPN" or "PrecomputedProposals".
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
# Proposals with a side <= MIN_SIZE (input-image pixels) are dropped.
_C.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

# ------------------------------------------------------------------------------------------------
# Anchor generator
# ------------------------------------------------------------------------------------------------
_C.MODEL.ANCHOR_GENERATOR = CN()
# A name in ANCHOR_GENERATOR_REGISTRY.
_C.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
# list[list[float]]: anchor sizes (sqrt of area, input pixels) per feature map; one inner list
# is shared by all feature maps.
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
# list[list[float]]: aspect ratios (h / w) per feature map, same broadcasting as SIZES.
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
# list[list[float]]: angles in degrees, for rotated anchors.
_C.MODEL.ANCHOR_GENERATOR.ANGLES = [[-90, 0, 90]]
# Offset of the first anchor centre from the image corner, in strides, in [0, 1).
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0

# ------------------------------------------------------------------------------------------------
# RPN
# ------------------------------------------------------------------------------------------------
_C.MODEL.RPN = CN()
# A name in RPN_HEAD_REGISTRY.
_C.MODEL.RPN.HEAD_NAME = "StandardRPNHead"
# Features the RPN runs on, e.g. p2..p6 with FPN.
_C.MODEL.RPN.IN_FEATURES = ["res4"]
# Drop anchors further than this many pixels outside the image (-1: keep all). Training only.
_C.MODEL.RPN.BOUNDARY_THRESH = -1
# Anchor labelling for training: IoU < 0.3 negative, >= 0.7 positive, between ignored.
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.IOU_LABELS = [0, -1, 1]
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
# "smooth_l1" or "giou" (HEAD also "diou", "ciou").
_C.MODEL.RPN.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 1.0
# Weights on (dx, dy, dw, dh) of the anchor -> proposal box transform.
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
_C.MODEL.RPN.LOSS_WEIGHT = 1.0
# Top-scoring anchors kept before NMS, per feature level with FPN.
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
# Proposals kept after NMS, per image (with FPN: per level, then again over all levels).
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
# Hidden conv widths of the RPN head; -1 = same as the input channels.
_C.MODEL.RPN.CONV_DIMS = [-1]

# ------------------------------------------------------------------------------------------------
# ROI heads
# ------------------------------------------------------------------------------------------------
_C.MODEL.ROI_HEADS = CN()
# A name in ROI_HEADS_REGISTRY.
_C.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
# Number of foreground classes.
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
# Features all ROI heads pool from, e.g. p2..p5 with FPN.
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
# Proposal labelling for training: IoU < 0.5 background, >= 0.5 foreground.
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# Test: detections scoring below this are dropped before NMS.
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
# Test: per-class NMS IoU threshold.
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
# Training: add ground-truth boxes to the sampled proposals.
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True

# ------------------------------------------------------------------------------------------------
# Box head
# ------------------------------------------------------------------------------------------------
_C.MODEL.ROI_BOX_HEAD = CN()
# A name in ROI_BOX_HEAD_REGISTRY (unused by C4 models, whose box head is res5).
_C.MODEL.ROI_BOX_HEAD.NAME = ""
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT = 1.0
# Weights on (dx, dy, dw, dh) of the proposal -> detection box transform.
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
# "ROIAlignV2" (aligned=True), "ROIAlign", "ROIPool" or "ROIAlignRotated".
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 0
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 0
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
# "" (no norm), "GN" or "SyncBN".
_C.MODEL.ROI_BOX_HEAD.NORM = ""
# One box regression for all classes instead of one per class.
_C.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False
_C.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = False
# Added after v0.6: federated loss for LVIS (training only).
_C.MODEL.ROI_BOX_HEAD.USE_FED_LOSS = False
_C.MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE = False
_C.MODEL.ROI_BOX_HEAD.FED_LOSS_FREQ_WEIGHT_POWER = 0.5
_C.MODEL.ROI_BOX_HEAD.FED_LOSS_NUM_CLASSES = 50

# ------------------------------------------------------------------------------------------------
# Cascade box head (the stage count is the length of these lists)
# ------------------------------------------------------------------------------------------------
_C.MODEL.ROI_BOX_CASCADE_HEAD = CN()
_C.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS = (
    (10.0, 10.0, 5.0, 5.0),
    (20.0, 20.0, 10.0, 10.0),
    (30.0, 30.0, 15.0, 15.0),
)
_C.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.5, 0.6, 0.7)

# ------------------------------------------------------------------------------------------------
# Mask head
# ------------------------------------------------------------------------------------------------
_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
# Number of 3x3 convs before the upsampling deconv.
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
_C.MODEL.ROI_MASK_HEAD.NORM = ""
# One mask for all classes instead of one per class.
_C.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"

# ------------------------------------------------------------------------------------------------
# Keypoint head
# ------------------------------------------------------------------------------------------------
_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.NAME = "KRCNNConvDeconvUpsampleHead"
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
# Widths of the 3x3 convs (eight of 512).
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = tuple(512 for _ in range(8))
# 17 = COCO person keypoints.
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 17
# Training: images with fewer visible keypoints are skipped.
_C.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE = 1
# Training: normalise the keypoint loss by the visible keypoints of the minibatch (else by
# all possible ones; then use LOSS_WEIGHT 4.0 instead of 1.0).
_C.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS = True
_C.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT = 1.0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE = "ROIAlignV2"

# ------------------------------------------------------------------------------------------------
# Semantic segmentation head
# ------------------------------------------------------------------------------------------------
_C.MODEL.SEM_SEG_HEAD = CN()
_C.MODEL.SEM_SEG_HEAD.NAME = "SemSegFPNHead"
_C.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
# Ground-truth label without loss.
_C.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255
_C.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 54
# Width of the 3x3 convs of the semantic FPN head.
_C.MODEL.SEM_SEG_HEAD.CONVS_DIM = 128
# Every level is upsampled to this stride before the predictor.
_C.MODEL.SEM_SEG_HEAD.COMMON_STRIDE = 4
# "" (no norm) or "GN".
_C.MODEL.SEM_SEG_HEAD.NORM = "GN"
_C.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT = 1.0

# ------------------------------------------------------------------------------------------------
# Panoptic FPN
# ------------------------------------------------------------------------------------------------
_C.MODEL.PANOPTIC_FPN = CN()
_C.MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT = 1.0
# Combining instance and semantic outputs into a panoptic segmentation.
# COMBINE.ENABLED is deprecated upstream and not read.
_C.MODEL.PANOPTIC_FPN.COMBINE = CN({"ENABLED": True})
_C.MODEL.PANOPTIC_FPN.COMBINE.OVERLAP_THRESH = 0.5
_C.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = 4096
_C.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = 0.5

# ------------------------------------------------------------------------------------------------
# RetinaNet
# ------------------------------------------------------------------------------------------------
_C.MODEL.RETINANET = CN()
# Number of foreground classes.
_C.MODEL.RETINANET.NUM_CLASSES = 80
_C.MODEL.RETINANET.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
# Convs in each of the class and box towers (without the final predictor conv).
_C.MODEL.RETINANET.NUM_CONVS = 4
# Anchor labelling for training: IoU < 0.4 negative, >= 0.5 positive, between ignored.
_C.MODEL.RETINANET.IOU_THRESHOLDS = [0.4, 0.5]
_C.MODEL.RETINANET.IOU_LABELS = [0, -1, 1]
# Initial foreground probability; sets the classifier's bias.
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
# Test: candidates scoring at or below this are dropped.
_C.MODEL.RETINANET.SCORE_THRESH_TEST = 0.05
# Test: candidates kept per level before NMS.
_C.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 1000
_C.MODEL.RETINANET.NMS_THRESH_TEST = 0.5
# Weights on (dx, dy, dw, dh) of the anchor -> detection box transform.
_C.MODEL.RETINANET.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RETINANET.FOCAL_LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.FOCAL_LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA = 0.1
_C.MODEL.RETINANET.BBOX_REG_LOSS_TYPE = "smooth_l1"
# Norm in the towers: "", "BN", "SyncBN", "FrozenBN" or "GN".
_C.MODEL.RETINANET.NORM = ""

# ------------------------------------------------------------------------------------------------
# ResNet / ResNeXt (used by backbones and by the res5 head of C4 models)
# ------------------------------------------------------------------------------------------------
_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.DEPTH = 50
# res4 for C4 models, res2..res5 for FPN.
_C.MODEL.RESNETS.OUT_FEATURES = ["res4"]
# 1: ResNet; > 1: ResNeXt.
_C.MODEL.RESNETS.NUM_GROUPS = 1
# "FrozenBN", "GN", "SyncBN" or "BN".
_C.MODEL.RESNETS.NORM = "FrozenBN"
# Width of each group in the bottleneck.
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
# Stride-2 on the first 1x1 conv of a bottleneck (MSRA models) instead of the 3x3 (C2, torchvision).
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
# Dilation of res5: 1, or 2 for DC5 models.
_C.MODEL.RESNETS.RES5_DILATION = 1
# Output channels of res2 (64 for ResNet-18/34) and of the stem.
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
# Deformable convs per stage res2..res5, modulated (v2) or not, and their groups.
_C.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, False]
_C.MODEL.RESNETS.DEFORM_MODULATED = False
_C.MODEL.RESNETS.DEFORM_NUM_GROUPS = 1

# ------------------------------------------------------------------------------------------------
# Solver (training only; kept so model-zoo YAMLs merge)
# ------------------------------------------------------------------------------------------------
_C.SOLVER = CN()
# "WarmupMultiStepLR" or "WarmupCosineLR" (HEAD also "WarmupStepWithFixedGammaLR").
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
# Final learning rate of WarmupCosineLR.
_C.SOLVER.BASE_LR_END = 0.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
# Weight decay of normalisation-layer parameters.
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.GAMMA = 0.1
# Iterations at which the learning rate is multiplied by GAMMA.
_C.SOLVER.STEPS = (30000,)
# Added after v0.6: number of decays of WarmupStepWithFixedGammaLR.
_C.SOLVER.NUM_DECAYS = 3
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
# Added after v0.6: rescale the schedule's interval after warmup.
_C.SOLVER.RESCALE_INTERVAL = False
_C.SOLVER.CHECKPOINT_PERIOD = 5000
# Images per iteration over all workers.
_C.SOLVER.IMS_PER_BATCH = 16
# Worker count the config was tuned for (0: no automatic rescaling).
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
# Detectron1 compatibility: learning-rate factor and weight decay of biases (None: WEIGHT_DECAY).
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
# "value" (clip each element) or "norm" (clip each parameter's gradient norm).
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
# p of the L-p norm for "norm" clipping (.inf for L-inf).
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
# Mixed precision in training (inference is unaffected).
_C.SOLVER.AMP = CN({"ENABLED": False})

# ------------------------------------------------------------------------------------------------
# Test
# ------------------------------------------------------------------------------------------------
_C.TEST = CN()
# End-to-end checks, items [task, metric, value, tolerance], e.g. [["bbox", "AP", 38.5, 0.2]].
_C.TEST.EXPECTED_RESULTS = []
# Evaluate every this many training iterations (0: never).
_C.TEST.EVAL_PERIOD = 0
# Keypoint OKS sigmas for evaluation ([]: COCO's); one per keypoint otherwise.
_C.TEST.KEYPOINT_OKS_SIGMAS = []
# Maximum detections per image (COCO's limit).
_C.TEST.DETECTIONS_PER_IMAGE = 100
# Test-time augmentation.
_C.TEST.AUG = CN({"ENABLED": False})
_C.TEST.AUG.MIN_SIZES = (400, 500, 600, 700, 800, 900, 1000, 1100, 1200)
_C.TEST.AUG.MAX_SIZE = 4000
_C.TEST.AUG.FLIP = True
# Recompute BatchNorm statistics before evaluation.
_C.TEST.PRECISE_BN = CN({"ENABLED": False})
_C.TEST.PRECISE_BN.NUM_ITER = 200

# ------------------------------------------------------------------------------------------------
# Misc
# ------------------------------------------------------------------------------------------------
_C.OUTPUT_DIR = "./output"
# < 0: random seed; >= 0: fixed seed.
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
# Visualise training batches every this many iterations (0: never).
_C.VIS_PERIOD = 0
# Free-form hack values (upstream's global_cfg); not read by the library.
_C.GLOBAL = CN()
_C.GLOBAL.HACK = 1.0
