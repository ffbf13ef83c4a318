"""The bundled shapes model (configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml) as a LazyConfig ``.py`` file:
the zoo's LazyConfig Mask R-CNN and COCO dataloader, made the shapes model by ``key=value`` overrides
(ResNet-18, FPN width 128, FC 256, mask convs 128, 3 classes) and tested on shapes_val at the CLI
tests' small size (160/224 px, as ``SMALL_OPTS``)."""

from __future__ import annotations

import os
import textwrap

from .conftest import WEIGHTS

SHAPES_LAZY_CONFIG = textwrap.dedent("""
    import detectron2_export.data.transforms as T
    from detectron2_export.config import LazyCall as L
    from detectron2_export.model_zoo import get_config

    model = get_config("common/models/mask_rcnn_fpn.py").model
    del model.backbone.bottom_up.stages.stride_in_1x1  # ResNet-18's BasicBlock has no such option
    dataloader = get_config("common/data/coco.py").dataloader
    dataloader.test.dataset.names = "shapes_val"
    dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=160, max_size=224)]
    dataloader.test.num_workers = 0
    train = dict(init_checkpoint="", device="cpu")
""")

SHAPES_MODEL_OVERRIDES = [
    "model.backbone.bottom_up.stages.depth=18",
    "model.backbone.out_channels=128",
    "model.proposal_generator.head.in_channels=128",
    "model.roi_heads.num_classes=3",
    "model.roi_heads.box_head.input_shape.channels=128",
    "model.roi_heads.box_head.fc_dims=[256, 256]",
    "model.roi_heads.box_predictor.input_shape.channels=256",
    "model.roi_heads.mask_head.input_shape.channels=128",
    "model.roi_heads.mask_head.conv_dims=[128, 128, 128, 128, 128]",
    "model.pixel_std=[57.375, 57.120, 58.395]",
]
# the model overrides plus the bundled checkpoint: the LazyConfig twin of MODEL_OPTS
SHAPES_OVERRIDES = SHAPES_MODEL_OVERRIDES + [f"train.init_checkpoint={WEIGHTS}"]


def write_shapes_lazy_config(directory: str) -> str:
    """Write the config into ``directory``; returns its path."""
    path = os.path.join(directory, "shapes_lazy.py")
    with open(path, "w") as f:
        f.write(SHAPES_LAZY_CONFIG)
    return path
