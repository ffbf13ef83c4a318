from omegaconf import OmegaConf

import detectron2_export.data.transforms as T
from detectron2_export.config import LazyCall as L
from detectron2_export.data import (
    DatasetMapper,
    build_detection_test_loader,
    get_detection_dataset_dicts,
)
from detectron2_export.evaluation import COCOEvaluator

dataloader = OmegaConf.create()

# Training only: detectron2's train loader and training mapper (see ../README.md).
dataloader.train = L("detectron2.data.build_detection_train_loader")(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_train"),
    mapper=L("detectron2.data.DatasetMapper")(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(640, 672, 704, 736, 768, 800),
                sample_style="choice",
                max_size=1333,
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="BGR",
        use_instance_mask=True,
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="coco_2017_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
        ],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

dataloader.evaluator = L(COCOEvaluator)(
    dataset_name="${..test.dataset.names}",
)
