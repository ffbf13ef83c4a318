import json
import logging
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

from detectron2_export.data import DatasetCatalog, MetadataCatalog
from detectron2_export.evaluation import COCOEvaluator, instances_to_coco_json
from detectron2_export.errors import DatasetError
from detectron2_export.structures import Boxes, Instances

from ..data.helpers import registered_coco, shapes_subset

# COCOeval interpolates precision at 101 recall thresholds 0, 0.01, ..., 1; finding 1 of 2 objects
# perfectly gives precision 1 at the 51 thresholds <= 0.5 and 0 beyond.
HALF_RECALL_AP = 100 * 51 / 101


def gt_as_predictions(dataset_dict, with_masks=True, with_keypoints=False):
    """Instances predicting exactly the ground truth (score 1) of one dataset dict."""
    anns = dataset_dict["annotations"]
    h, w = dataset_dict["height"], dataset_dict["width"]
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(boxes)
    inst.scores = torch.ones(len(anns))
    inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
    if with_masks:
        masks = [mask_util.decode(a["segmentation"]) for a in anns]
        inst.pred_masks = torch.from_numpy(np.stack(masks)).bool() if masks else torch.zeros(0, h, w, dtype=torch.bool)
    if with_keypoints:
        keypoints = [a["keypoints"] for a in anns]
        inst.pred_keypoints = torch.tensor(keypoints).reshape(len(anns), -1, 3) if anns else torch.zeros(0, 3, 3)
    return inst


def evaluate_gt(name, with_keypoints=False, **kwargs):
    dicts = DatasetCatalog.get(name)  # loading sets the metadata the evaluator maps ids with
    evaluator = COCOEvaluator(name, **kwargs)
    evaluator.reset()
    for d in dicts:
        predictions = gt_as_predictions(d, with_keypoints=with_keypoints)
        evaluator.process([{"image_id": d["image_id"]}], [{"instances": predictions}])
    return evaluator.evaluate()


def test_ground_truth_as_predictions_gives_ap_100(tmp_path):
    with registered_coco(shapes_subset(20), str(tmp_path)) as name:
        results = evaluate_gt(name, output_dir=str(tmp_path / "out"))
    assert list(results) == ["bbox", "segm"]
    for task in ("bbox", "segm"):
        assert list(results[task])[:6] == ["AP", "AP50", "AP75", "APs", "APm", "APl"]
        for metric, value in results[task].items():
            assert value == pytest.approx(100.0, abs=1e-9), (task, metric)
        assert {"AP-circle", "AP-square", "AP-triangle"} <= results[task].keys()
    written = json.loads((tmp_path / "out" / "coco_instances_results.json").read_text())
    assert {r["category_id"] for r in written} == {1, 2, 3}  # contiguous ids mapped back to the json's
    assert (tmp_path / "out" / "instances_predictions.pth").is_file()


def test_keypoints_round_trip_gives_ap_100(tmp_path):
    # keypoint AP needs keypoints on every ground truth: keep the triangles only
    with registered_coco(shapes_subset(20, keep_category_ids=(3,)), str(tmp_path)) as name:
        results = evaluate_gt(name, with_keypoints=True, kpt_oks_sigmas=(0.05, 0.05, 0.05))
    assert sorted(results) == ["bbox", "keypoints", "segm"]
    assert list(results["keypoints"])[:5] == ["AP", "AP50", "AP75", "APm", "APl"]
    assert results["keypoints"]["AP"] == pytest.approx(100.0, abs=1e-9)
    assert results["keypoints"]["AP-triangle"] == pytest.approx(100.0, abs=1e-9)
    assert math.isnan(results["keypoints"]["AP-circle"])  # no circle in the ground truth


def test_keypoint_count_mismatch_is_a_clear_error(tmp_path):
    with registered_coco(shapes_subset(3, keep_category_ids=(3,)), str(tmp_path)) as name:
        with pytest.raises(ValueError, match="Prediction contain 3 keypoints.*KEYPOINT_OKS_SIGMAS is 17"):
            evaluate_gt(name, with_keypoints=True, tasks=("keypoints",))


def hand_dataset():
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}],
        "annotations": [  # two 40x40 boxes: "medium" (32^2 < 1600 < 96^2)
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 40, 40], "area": 1600, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


def run_boxes(name, boxes_xyxy, scores):
    inst = Instances((100, 100))
    inst.pred_boxes = Boxes(torch.tensor(boxes_xyxy, dtype=torch.float32))
    inst.scores = torch.tensor(scores)
    inst.pred_classes = torch.zeros(len(scores), dtype=torch.int64)
    DatasetCatalog.get(name)  # as a test loader would: sets the id mapping in the metadata
    evaluator = COCOEvaluator(name, tasks=("bbox",), use_fast_impl=False)
    evaluator.process([{"image_id": 1}], [{"instances": inst}])
    return evaluator.evaluate()["bbox"]


def test_one_of_two_objects_found(tmp_path):
    with registered_coco(hand_dataset(), str(tmp_path)) as name:
        res = run_boxes(name, [[0, 0, 40, 40]], [0.9])
    for metric in ("AP", "AP50", "AP75", "APm", "AP-a"):
        assert res[metric] == pytest.approx(HALF_RECALL_AP, abs=1e-9), metric
    for metric in ("APs", "APl", "AP-b"):  # no ground truth of that size / class
        assert math.isnan(res[metric]), metric


def test_false_positive_ranked_first_lowers_the_precision_envelope(tmp_path):
    # both objects found, but a higher-scored miss first: precisions 0, 1/2, 2/3 at recalls 0, 0.5, 1.
    # The envelope is 2/3 at every recall threshold.
    with registered_coco(hand_dataset(), str(tmp_path)) as name:
        res = run_boxes(name, [[0, 60, 30, 90], [0, 0, 40, 40], [50, 50, 90, 90]], [0.9, 0.8, 0.7])
    assert res["AP"] == pytest.approx(100 * 2 / 3, abs=1e-9)


def test_instances_to_coco_json_conventions():
    inst = Instances((4, 5))
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 2.0, 4.0, 3.5]]))
    inst.scores = torch.tensor([0.5])
    inst.pred_classes = torch.tensor([2])
    mask = torch.zeros(1, 4, 5, dtype=torch.bool)
    mask[0, 1:3, 2:4] = True
    inst.pred_masks = mask
    inst.pred_keypoints = torch.tensor([[[1.5, 2.5, 0.9], [3.0, 1.0, 0.1]]])
    (r,) = instances_to_coco_json(inst, 42)
    assert r["image_id"] == 42 and r["category_id"] == 2 and r["score"] == 0.5
    assert r["bbox"] == [1.0, 2.0, 3.0, 1.5]  # XYWH
    np.testing.assert_array_equal(mask_util.decode(r["segmentation"]), mask[0].numpy())
    assert isinstance(r["segmentation"]["counts"], str)
    assert r["keypoints"] == pytest.approx([1.0, 2.0, 0.9, 2.5, 0.5, 0.1])  # x, y - 0.5
    assert inst.pred_keypoints[0, 0, 0] == 1.5  # input untouched
    assert instances_to_coco_json(inst[[]], 1) == []


def test_no_predictions_and_missing_json(tmp_path, caplog):
    with registered_coco(hand_dataset(), str(tmp_path)) as name:
        evaluator = COCOEvaluator(name)
        with caplog.at_level(logging.WARNING):
            assert evaluator.evaluate() == {}
        assert "Did not receive valid predictions" in caplog.text
        empty = Instances(
            (100, 100), pred_boxes=Boxes(torch.zeros(0, 4)), scores=torch.zeros(0), pred_classes=torch.zeros(0).long()
        )
        evaluator.process([{"image_id": 1}], [{"instances": empty}])
        res = evaluator.evaluate()["bbox"]
        assert math.isnan(res["AP"])
    DatasetCatalog.register("test_no_json", list)
    try:
        # no json_file and no thing_classes: the conversion to COCO json cannot name the categories
        with pytest.raises(DatasetError, match="'test_no_json' has no json_file.*thing_classes"):
            COCOEvaluator("test_no_json")
    finally:
        DatasetCatalog.remove("test_no_json")
        MetadataCatalog.remove("test_no_json")
