"""A script written for detectron2 imports what it needs from detectron2's module paths: every
public name of those modules imports here (names as in detectron2 v0.6's modules); the
training-only ones raise TrainingOnlyError (a NotImplementedError) when used, naming themselves."""

from __future__ import annotations

import importlib

import pytest
import torch

from detectron2_export.utils.training_only import TrainingOnlyError, training_only_class, training_only_function

# module (detectron2_export.X for detectron2.X) -> the public names detectron2 defines there
UPSTREAM_NAMES = {
    "layers": [
        "ASPP", "BatchNorm2d", "CNNBlockBase", "Conv2d", "ConvTranspose2d", "CycleBatchNormList", "DeformConv",
        "DepthwiseSeparableConv2d", "FrozenBatchNorm2d", "Linear", "ModulatedDeformConv", "NaiveSyncBatchNorm",
        "ROIAlign", "ROIAlignRotated", "ShapeSpec", "batched_nms", "batched_nms_rotated", "cat", "ciou_loss",
        "cross_entropy", "diou_loss", "empty_input_loss_func_wrapper", "get_norm", "interpolate",
        "move_device_like", "nms", "nms_rotated", "nonzero_tuple", "paste_masks_in_image", "roi_align",
        "roi_align_rotated", "shapes_to_tensor",
    ],
    "layers.mask_ops": ["paste_masks_in_image", "paste_mask_in_image_old", "pad_masks", "scale_boxes", "_do_paste_mask"],
    "layers.rotated_boxes": ["pairwise_iou_rotated"],
    "layers.losses": ["ciou_loss", "diou_loss"],
    "layers.aspp": ["ASPP"],
    "structures": [
        "BitMasks", "BoxMode", "Boxes", "ImageList", "Instances", "Keypoints", "PolygonMasks", "ROIMasks",
        "RotatedBoxes", "heatmaps_to_keypoints", "pairwise_ioa", "pairwise_iou", "pairwise_iou_rotated",
        "pairwise_point_box_distance", "polygons_to_bitmask",
    ],
    "structures.masks": ["polygon_area", "polygons_to_bitmask", "rasterize_polygons_within_box"],
    "data.transforms": [
        "Augmentation", "AugmentationList", "AugInput", "BlendTransform", "ColorTransform", "CropTransform",
        "ExtentTransform", "FixedSizeCrop", "GridSampleTransform", "HFlipTransform", "MinIoURandomCrop",
        "NoOpTransform", "PILColorTransform", "PadTransform", "RandomApply", "RandomBrightness",
        "RandomContrast", "RandomCrop", "RandomCrop_CategoryAreaConstraint", "RandomExtent", "RandomFlip",
        "RandomLighting", "RandomResize", "RandomRotation", "RandomSaturation", "Resize", "ResizeScale",
        "ResizeShortestEdge", "ResizeTransform", "RotationTransform", "ScaleTransform", "StandardAugInput",
        "Transform", "TransformGen", "TransformList", "VFlipTransform", "apply_augmentations",
        "apply_transform_gens",
    ],
    "modeling.box_regression": [
        "Box2BoxTransform", "Box2BoxTransformLinear", "Box2BoxTransformRotated", "_dense_box_regression_loss",
        "giou_loss", "smooth_l1_loss",
    ],
    "modeling.matcher": ["Matcher"],
    "modeling.sampling": ["subsample_labels"],
    "modeling.proposal_generator.proposal_utils": [
        "find_top_rpn_proposals", "add_ground_truth_to_proposals", "add_ground_truth_to_proposals_single_image",
    ],
    "modeling.mmdet_wrapper": ["MMDetBackbone", "MMDetDetector"],
    "modeling": ["MMDetBackbone", "MMDetDetector"],
    "utils.registry": ["Registry", "locate", "_convert_target_to_string"],
    "utils.logger": ["setup_logger", "log_first_n", "log_every_n", "log_every_n_seconds", "create_small_table"],
    "utils.env": ["seed_all_rng", "TORCH_VERSION"],
}

# name -> how a script would call it
TRAINING_ONLY_CALLS = {
    "modeling.box_regression._dense_box_regression_loss": lambda f: f([], None, [], [], None),
    "modeling.proposal_generator.proposal_utils.add_ground_truth_to_proposals": lambda f: f([], []),
    "modeling.proposal_generator.proposal_utils.add_ground_truth_to_proposals_single_image": lambda f: f(None, None),
    "structures.PolygonMasks": lambda cls: cls([]),
    "data.transforms.RandomCrop": lambda cls: cls("relative_range", (0.5, 0.5)),
    "data.transforms.RandomRotation": lambda cls: cls([-10, 10]),
    "data.transforms.CropTransform": lambda cls: cls(0, 0, 4, 4),
}


@pytest.mark.parametrize("module", sorted(UPSTREAM_NAMES))
def test_upstream_names_import(module):
    mod = importlib.import_module(f"detectron2_export.{module}")
    missing = [name for name in UPSTREAM_NAMES[module] if not hasattr(mod, name)]
    assert missing == [], f"detectron2_export.{module} lacks {missing}"
    public = [n for n in UPSTREAM_NAMES[module] if not n.startswith("_")]
    if hasattr(mod, "__all__") and module not in ("modeling.box_regression", "utils.registry"):
        assert set(public) <= set(mod.__all__), sorted(set(public) - set(mod.__all__))


@pytest.mark.parametrize("path", sorted(TRAINING_ONLY_CALLS))
def test_training_only_names_raise_when_used(path):
    module, name = path.rsplit(".", 1)
    obj = getattr(importlib.import_module(f"detectron2_export.{module}"), name)
    with pytest.raises(TrainingOnlyError, match=rf"\.{name} is training-only: detectron2_export implements"):
        TRAINING_ONLY_CALLS[path](obj)
    with pytest.raises(NotImplementedError):
        TRAINING_ONLY_CALLS[path](obj)


def test_training_only_helpers():
    fn = training_only_function("pkg.mod", "train_step")
    assert (fn.__module__, fn.__name__) == ("pkg.mod", "train_step")
    cls = training_only_class("pkg.mod", "Trainer", base=torch.nn.Module)
    assert issubclass(cls, torch.nn.Module) and cls.__qualname__ == "Trainer" and cls.__module__ == "pkg.mod"
    with pytest.raises(TrainingOnlyError, match=r"^pkg\.mod\.Trainer is training-only"):
        cls()


def test_subsample_labels():
    from detectron2_export.modeling.sampling import subsample_labels

    labels = torch.tensor([-1, 3, 0, 3, 3, 0, 0, 0, 1, -1])  # bg_label 0; 4 positives, 4 negatives
    torch.manual_seed(0)
    pos, neg = subsample_labels(labels, num_samples=6, positive_fraction=0.25, bg_label=0)
    assert pos.numel() == 1 and neg.numel() == 4  # int(6 * 0.25) = 1 positive; only 4 negatives exist
    assert set(pos.tolist()) <= {1, 3, 4, 8} and set(neg.tolist()) == {2, 5, 6, 7}
    pos, neg = subsample_labels(labels, num_samples=6, positive_fraction=1.0, bg_label=0)
    assert sorted(pos.tolist()) == [1, 3, 4, 8] and neg.numel() == 2  # the 2 left go to negatives
    assert len(set(neg.tolist())) == 2 and set(neg.tolist()) <= {2, 5, 6, 7}
