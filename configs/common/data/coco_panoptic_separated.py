from detectron2_export.config import LazyCall as L
from detectron2_export.evaluation import COCOEvaluator, DatasetEvaluators

from .coco import dataloader

dataloader.train.dataset.names = "coco_2017_train_panoptic_separated"
dataloader.train.dataset.filter_empty = False
dataloader.test.dataset.names = "coco_2017_val_panoptic_separated"


# Semantic and panoptic evaluation are detectron2's (this project evaluates instances).
dataloader.evaluator = L(DatasetEvaluators)(
    evaluators=[
        L(COCOEvaluator)(
            dataset_name="${....test.dataset.names}",
        ),
        L("detectron2.evaluation.SemSegEvaluator")(
            dataset_name="${....test.dataset.names}",
        ),
        L("detectron2.evaluation.COCOPanopticEvaluator")(
            dataset_name="${....test.dataset.names}",
        ),
    ]
)
