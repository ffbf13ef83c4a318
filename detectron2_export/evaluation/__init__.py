"""Evaluation on datasets (COCO AP via pycocotools), as ``detectron2.evaluation``."""

from .coco_evaluation import COCOEvaluator, instances_to_coco_json
from .evaluator import DatasetEvaluator, DatasetEvaluators, inference_context, inference_on_dataset
from .testing import format_ap_comparison, format_ap_table, print_csv_format, verify_results

__all__ = [
    "COCOEvaluator",
    "instances_to_coco_json",
    "DatasetEvaluator",
    "DatasetEvaluators",
    "inference_context",
    "inference_on_dataset",
    "print_csv_format",
    "verify_results",
    "format_ap_table",
    "format_ap_comparison",
]
