"""COCO AP (bbox, segm, keypoints) with pycocotools, as ``detectron2.evaluation.COCOEvaluator``."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import logging
import os
import tempfile
from collections import OrderedDict
from typing import Sequence

import numpy as np
import pycocotools.mask as mask_util
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from yacs.config import CfgNode

from detectron2_export.data import MetadataCatalog
from detectron2_export.data.datasets.coco import convert_to_coco_json
from detectron2_export.data.datasets.paths import require_path
from detectron2_export.errors import ConfigError, DatasetError
from detectron2_export.structures import BoxMode, Instances
from detectron2_export.utils import comm
from detectron2_export.utils.file_io import atomic_write

from .evaluator import DatasetEvaluator
from .fast_eval_api import COCOeval_opt
from .tables import create_small_table, per_category_table

__all__ = ["COCOEvaluator", "instances_to_coco_json", "COCOevalMaxDets"]

logger = logging.getLogger(__name__)

_METRICS = {
    "bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
    "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
    "keypoints": ["AP", "AP50", "AP75", "APm", "APl"],
}


class COCOEvaluator(DatasetEvaluator):
    """AP of instance predictions against a dataset's COCO json.

    The tasks are bbox, plus segm when predictions have ``pred_masks`` and keypoints when they
    have ``pred_keypoints`` (unless ``tasks`` names them). Results are percentages:
    ``{"bbox": {"AP": ..., "AP50", "AP75", "APs", "APm", "APl", "AP-<class>": ...}, ...}``.
    A dataset without ``json_file`` in its metadata is converted to COCO json first
    (``<output_dir>/<dataset_name>_coco_format.json``, reused when ``allow_cached_coco``), and
    ``json_file`` is set to it. With ``distributed`` (under torch.distributed) ``evaluate`` gathers
    every rank's predictions to rank 0, which alone computes AP and writes files; the other ranks
    return {}. ``use_fast_impl`` (the default, as upstream) evaluates
    with :class:`.fast_eval_api.COCOeval_opt`, otherwise with pycocotools' COCOeval.
    """

    def __init__(
        self,
        dataset_name: str,
        tasks: Sequence[str] | CfgNode | None = None,
        distributed: bool = True,
        output_dir: str | None = None,
        *,
        max_dets_per_image: int | None = None,
        use_fast_impl: bool = True,
        kpt_oks_sigmas: Sequence[float] = (),
        allow_cached_coco: bool = True,
    ):
        self._distributed = distributed
        self._output_dir = output_dir
        self._use_fast_impl = use_fast_impl  # COCOeval_opt (faster-coco-eval), same numbers as pycocotools
        # COCOeval wants maxDets as a list of 3; the last one limits detections per image for AP
        self._max_dets_per_image = [1, 10, 100 if max_dets_per_image is None else max_dets_per_image]

        if isinstance(tasks, CfgNode):  # the deprecated COCOEvaluator(name, cfg, distributed, output_dir)
            kpt_oks_sigmas = kpt_oks_sigmas or tuple(tasks.TEST.KEYPOINT_OKS_SIGMAS)
            logger.warning(
                "COCO Evaluator instantiated using config, this is deprecated behavior. "
                "Please pass in explicit arguments instead."
            )
            self._tasks = None  # inferred from the predictions
        else:
            self._tasks = tasks

        self._metadata = MetadataCatalog.get(dataset_name)
        json_file = self._metadata.get("json_file")
        if json_file is None:
            json_file = _convert_to_cached_coco_json(dataset_name, output_dir, allow_cached_coco)
            self._metadata.json_file = json_file
        require_path(json_file, f"COCOEvaluator({dataset_name!r})", "json_file")
        with contextlib.redirect_stdout(io.StringIO()):
            self._coco_api = COCO(os.fspath(json_file))
        # test-set json files have no annotations (those are evaluated by the COCO server)
        self._do_evaluation = "annotations" in self._coco_api.dataset
        self._kpt_oks_sigmas = kpt_oks_sigmas
        self._predictions: list[dict] = []
        self._results: OrderedDict = OrderedDict()

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """Keep each image's instances as COCO json results (masks RLE-encoded, to save memory)."""
        for input, output in zip(inputs, outputs):
            if "instances" not in output:
                continue
            instances = output["instances"].to(torch.device("cpu"))
            self._predictions.append(
                {"image_id": input["image_id"], "instances": instances_to_coco_json(instances, input["image_id"])}
            )

    def evaluate(self, img_ids: Sequence[int] | None = None) -> OrderedDict | dict:
        """img_ids: evaluate only these images (default: every image of the json)."""
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(self._predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        else:
            predictions = self._predictions
        if len(predictions) == 0:
            logger.warning("[COCOEvaluator] Did not receive valid predictions.")
            return {}
        if self._output_dir:
            os.makedirs(self._output_dir, exist_ok=True)
            with atomic_write(os.path.join(self._output_dir, "instances_predictions.pth")) as f:
                torch.save(predictions, f)

        self._results = OrderedDict()
        self._eval_predictions(predictions, img_ids=img_ids)
        return copy.deepcopy(self._results)

    def _tasks_from_predictions(self, coco_results: list[dict]) -> list[str]:
        tasks = {"bbox"}
        for pred in coco_results:
            if "segmentation" in pred:
                tasks.add("segm")
            if "keypoints" in pred:
                tasks.add("keypoints")
        return sorted(tasks)

    def _unmap_category_ids(self, coco_results: list[dict]) -> None:
        """Contiguous ids predicted by the model -> the dataset's category ids."""
        id_map = self._metadata.get("thing_dataset_id_to_contiguous_id")
        if id_map is None:
            return
        num_classes = len(id_map)
        if sorted(id_map.values()) != list(range(num_classes)):
            raise DatasetError(
                f"Metadata of {self._metadata.name!r}: thing_dataset_id_to_contiguous_id values="
                f"{sorted(id_map.values())}, expected 0..{num_classes - 1}"
            )
        reverse = {v: k for k, v in id_map.items()}
        for result in coco_results:
            category_id = result["category_id"]
            if category_id not in reverse:
                raise DatasetError(
                    f"COCOEvaluator: predicted category_id={category_id}, expected one of 0..{num_classes - 1} "
                    f"(the dataset has {num_classes} classes)"
                )
            result["category_id"] = reverse[category_id]

    def _eval_predictions(self, predictions: list[dict], img_ids: Sequence[int] | None = None) -> None:
        logger.info("Preparing results for COCO format ...")
        coco_results = list(itertools.chain(*[x["instances"] for x in predictions]))
        tasks = self._tasks or self._tasks_from_predictions(coco_results)
        self._unmap_category_ids(coco_results)

        if self._output_dir:
            file_path = os.path.join(self._output_dir, "coco_instances_results.json")
            logger.info("Saving results to %s", file_path)
            with atomic_write(file_path, "w") as f:
                f.write(json.dumps(coco_results))
        if not self._do_evaluation:
            logger.info("Annotations are not available for evaluation.")
            return

        logger.info("Evaluating predictions with official COCO API...")
        for task in sorted(tasks):
            if task not in _METRICS:
                raise ValueError(f"COCOEvaluator: task={task!r}, expected one of {sorted(_METRICS)}")
            coco_eval = (
                _evaluate_predictions_on_coco(
                    self._coco_api,
                    coco_results,
                    task,
                    kpt_oks_sigmas=self._kpt_oks_sigmas,
                    cocoeval_fn=COCOeval_opt if self._use_fast_impl else COCOeval,
                    img_ids=img_ids,
                    max_dets_per_image=self._max_dets_per_image,
                )
                if len(coco_results) > 0
                else None  # pycocotools does not handle empty results
            )
            self._results[task] = self._derive_coco_results(
                coco_eval, task, class_names=self._metadata.get("thing_classes")
            )

    def _derive_coco_results(
        self, coco_eval: COCOeval | None, iou_type: str, class_names: list[str] | None = None
    ) -> dict:
        """COCOeval stats -> percentages, plus per-category AP (all areas, the largest maxDets)."""
        metrics = _METRICS[iou_type]
        if coco_eval is None:
            logger.warning("No predictions from the model!")
            return {metric: float("nan") for metric in metrics}

        results = {
            metric: float(coco_eval.stats[idx] * 100 if coco_eval.stats[idx] >= 0 else "nan")
            for idx, metric in enumerate(metrics)
        }
        logger.info("Evaluation results for %s: \n%s", iou_type, create_small_table(results))
        if not np.isfinite(sum(results.values())):
            logger.info("Some metrics cannot be computed and is shown as NaN.")
        if class_names is None or len(class_names) <= 1:
            return results

        precisions = coco_eval.eval["precision"]  # (iou, recall, class, area range, max dets)
        if len(class_names) != precisions.shape[2]:
            raise DatasetError(
                f"COCOEvaluator: thing_classes has {len(class_names)} names, expected {precisions.shape[2]} "
                "(the number of categories in the json file)"
            )
        per_category = []
        for idx, name in enumerate(class_names):
            precision = precisions[:, :, idx, 0, -1]
            precision = precision[precision > -1]
            ap = np.mean(precision) if precision.size else float("nan")
            per_category.append((f"{name}", float(ap * 100)))
        logger.info("Per-category %s AP: \n%s", iou_type, per_category_table(per_category))
        results.update({"AP-" + name: ap for name, ap in per_category})
        return results


_temporary_cache_dir: tempfile.TemporaryDirectory | None = None


def _convert_to_cached_coco_json(dataset_name: str, output_dir: str | None, allow_cached: bool) -> str:
    """Convert a dataset without a COCO json file; the json lies in output_dir, else in a directory
    removed when the process exits."""
    global _temporary_cache_dir
    logger.info("'%s' has no json_file in its metadata. Trying to convert it to COCO format ...", dataset_name)
    if not output_dir:
        if _temporary_cache_dir is None:
            _temporary_cache_dir = tempfile.TemporaryDirectory(prefix="coco_evaluator_")
        output_dir = _temporary_cache_dir.name
    cache_path = os.path.join(output_dir, f"{dataset_name}_coco_format.json")
    try:
        convert_to_coco_json(dataset_name, cache_path, allow_cached=allow_cached)
    except DatasetError as e:
        raise DatasetError(
            f"COCOEvaluator: dataset {dataset_name!r} has no json_file in its metadata, and converting it to "
            f"COCO format failed: {e}"
        ) from e
    return cache_path


def instances_to_coco_json(instances: Instances, img_id: int) -> list[dict]:
    """One image's predicted Instances -> COCO results: XYWH boxes, RLE masks, keypoints.

    Keypoints get -0.5 on x, y: the inverse of load_coco_json's +0.5, since COCO keypoints are
    pixel indices. The Instances are not modified.
    """
    num_instance = len(instances)
    if num_instance == 0:
        return []

    boxes = BoxMode.convert(instances.pred_boxes.tensor.numpy(), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS).tolist()
    scores = instances.scores.tolist()
    classes = instances.pred_classes.tolist()

    rles = None
    if instances.has("pred_masks"):
        rles = [
            mask_util.encode(np.array(mask[:, :, None], order="F", dtype="uint8"))[0]
            for mask in instances.pred_masks.numpy()
        ]
        for rle in rles:
            rle["counts"] = rle["counts"].decode("utf-8")  # json cannot hold bytes
    keypoints = None
    if instances.has("pred_keypoints"):
        keypoints = instances.pred_keypoints.clone()
        keypoints[:, :, :2] -= 0.5

    results = []
    for k in range(num_instance):
        result = {"image_id": img_id, "category_id": classes[k], "bbox": boxes[k], "score": scores[k]}
        if rles is not None:
            result["segmentation"] = rles[k]
        if keypoints is not None:
            result["keypoints"] = keypoints[k].flatten().tolist()
        results.append(result)
    return results


class COCOevalMaxDets(COCOeval):
    """COCOeval whose overall AP uses the last maxDets instead of a hard-coded 100."""

    def summarize(self) -> None:
        super().summarize()
        if self.params.iouType in ("bbox", "segm"):
            s = self.eval["precision"][:, :, :, self.params.areaRngLbl.index("all"), 2]
            self.stats[0] = np.mean(s[s > -1]) if (s > -1).any() else -1


def _evaluate_predictions_on_coco(
    coco_gt: COCO,
    coco_results: list[dict],
    iou_type: str,
    kpt_oks_sigmas: Sequence[float] | None = None,
    cocoeval_fn: type = COCOeval_opt,
    img_ids: Sequence[int] | None = None,
    max_dets_per_image: list[int] | None = None,
) -> COCOeval:
    """Run pycocotools' evaluate/accumulate/summarize; its summary is logged, not printed."""
    if iou_type == "segm":
        # without "bbox", pycocotools uses the mask area for the small/medium/large split
        coco_results = copy.deepcopy(coco_results)
        for c in coco_results:
            c.pop("bbox", None)

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(coco_results)
    if max_dets_per_image is None:
        max_dets_per_image = [1, 10, 100]
    eval_cls = COCOevalMaxDets if max_dets_per_image[2] != 100 else cocoeval_fn
    coco_eval = eval_cls(coco_gt, coco_dt, iou_type)
    if iou_type != "keypoints":
        coco_eval.params.maxDets = max_dets_per_image
    if img_ids is not None:
        coco_eval.params.imgIds = list(img_ids)

    if iou_type == "keypoints":
        if kpt_oks_sigmas:
            coco_eval.params.kpt_oks_sigmas = np.array(kpt_oks_sigmas)
        # pycocotools needs every detection and ground truth to have the same number of keypoints
        num_dt = len(coco_results[0]["keypoints"]) // 3
        num_gt = len(next(a for a in coco_gt.anns.values() if "keypoints" in a)["keypoints"]) // 3
        num_oks = len(coco_eval.params.kpt_oks_sigmas)
        if not num_oks == num_dt == num_gt:
            raise ConfigError(
                f"[COCOEvaluator] Prediction contain {num_dt} keypoints. Ground truth contains {num_gt} keypoints. "
                f"The length of cfg.TEST.KEYPOINT_OKS_SIGMAS is {num_oks}. They have to agree with each other. "
                "For meaning of OKS, please refer to http://cocodataset.org/#keypoints-eval."
            )

    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    logger.info("COCOeval (%s):\n%s", iou_type, summary.getvalue().rstrip())
    return coco_eval
