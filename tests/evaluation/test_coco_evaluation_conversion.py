"""COCOEvaluator on datasets registered without a COCO json: converted on the fly, same AP."""

import math
import os

import numpy as np
import pytest
import torch

from detectron2_export.data import DatasetCatalog, MetadataCatalog
from detectron2_export.data.datasets import MissingDatasetFileError
from detectron2_export.errors import DatasetError
from detectron2_export.evaluation import COCOEvaluator
from detectron2_export.structures import Boxes

from ..data.helpers import registered_coco, shapes_subset
from ..data.test_convert_to_coco import registered_dataset, shapes_metadata
from .test_coco_evaluation import gt_as_predictions

NUM_IMAGES = 30


def shapes_dicts() -> list[dict]:
    """The first NUM_IMAGES images of shapes_val (the ones shapes_subset(NUM_IMAGES) keeps)."""
    return DatasetCatalog.get("shapes_val")[:NUM_IMAGES]


def jittered(instances, rng: np.random.Generator):
    """Boxes moved by up to 4 px, random scores, every 4th prediction dropped, classes partly wrong."""
    keep = torch.tensor([i % 4 != 3 for i in range(len(instances))], dtype=torch.bool)
    out = instances[keep]
    boxes = out.pred_boxes.tensor + torch.from_numpy(rng.uniform(-4, 4, size=tuple(out.pred_boxes.tensor.shape)))
    out.pred_boxes = Boxes(boxes)
    out.scores = torch.from_numpy(rng.uniform(0.05, 1.0, size=len(out))).float()
    wrong = torch.from_numpy(rng.uniform(size=len(out)) < 0.2)
    out.pred_classes = torch.where(wrong, (out.pred_classes + 1) % 3, out.pred_classes)
    return out


def evaluate(name: str, dicts: list[dict], make_predictions, **kwargs) -> dict:
    evaluator = COCOEvaluator(name, tasks=("bbox", "segm"), **kwargs)
    evaluator.reset()
    for d in dicts:
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": make_predictions(d)}])
    return evaluator.evaluate()


def test_perfect_predictions_on_a_dataset_without_json(tmp_path):
    dicts = shapes_dicts()
    with registered_dataset(shapes_dicts, **shapes_metadata()) as name:
        results = evaluate(name, dicts, gt_as_predictions, output_dir=str(tmp_path))
        cache = os.path.join(str(tmp_path), f"{name}_coco_format.json")
        assert MetadataCatalog.get(name).json_file == cache and os.path.isfile(cache)
    for task in ("bbox", "segm"):
        for metric, value in results[task].items():
            assert value == pytest.approx(100.0, abs=1e-9), (task, metric)
        assert {"AP-circle", "AP-square", "AP-triangle"} <= results[task].keys()


def test_converted_and_original_json_give_the_same_ap(tmp_path):
    dicts = shapes_dicts()

    def predictions(d):
        return jittered(gt_as_predictions(d), np.random.default_rng(d["image_id"]))

    with registered_coco(shapes_subset(NUM_IMAGES), str(tmp_path)) as with_json:
        DatasetCatalog.get(with_json)  # sets the id mapping the evaluator unmaps predictions with
        expected = evaluate(with_json, dicts, predictions)
    with registered_dataset(shapes_dicts, **shapes_metadata()) as without_json:
        got = evaluate(without_json, dicts, predictions)  # output_dir=None: a temporary cache
        assert os.path.isfile(MetadataCatalog.get(without_json).json_file)

    assert 20 < expected["bbox"]["AP"] < 95  # imperfect, so the comparison means something
    assert got.keys() == expected.keys()
    for task in expected:
        assert got[task].keys() == expected[task].keys()
        for metric, value in expected[task].items():
            if math.isnan(value):
                assert math.isnan(got[task][metric]), (task, metric)
            else:
                assert got[task][metric] == pytest.approx(value, abs=1e-6), (task, metric)


def test_cached_conversion_is_reused(tmp_path):
    with registered_dataset(shapes_dicts, **shapes_metadata()) as name:
        cache = tmp_path / f"{name}_coco_format.json"
        cache.write_text('{"images": [], "categories": []}')  # a stale cache: no annotations
        evaluator = COCOEvaluator(name, output_dir=str(tmp_path))
        assert evaluator._coco_api.dataset == {"images": [], "categories": []}
    with registered_dataset(shapes_dicts, **shapes_metadata()) as name:
        cache = tmp_path / f"{name}_coco_format.json"
        cache.write_text('{"images": [], "categories": []}')
        evaluator = COCOEvaluator(name, output_dir=str(tmp_path), allow_cached_coco=False)
        assert len(evaluator._coco_api.imgs) == NUM_IMAGES


def test_errors_still_name_the_problem(tmp_path):
    with registered_dataset(shapes_dicts) as name:  # no thing_classes: cannot be converted
        with pytest.raises(DatasetError, match="has no json_file.*metadata has no thing_classes"):
            COCOEvaluator(name, output_dir=str(tmp_path))
        assert MetadataCatalog.get(name).get("json_file") is None
    missing = str(tmp_path / "nope.json")
    with registered_dataset(shapes_dicts, json_file=missing) as name:
        with pytest.raises(MissingDatasetFileError, match="json_file=.*nope.json.* does not exist"):
            COCOEvaluator(name, output_dir=str(tmp_path))
