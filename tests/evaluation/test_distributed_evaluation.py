"""inference_on_dataset + COCOEvaluator over 2 gloo processes: each rank runs its contiguous shard, rank 0
gathers, alone reports AP and writes files, and the AP equals a single process's.

Independent references: ground-truth predictions give AP 100 only if every image's predictions
reach rank 0 (a lost shard lowers the recall); jittered predictions are compared with the same
evaluation done in this one process.
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest
import torch

from detectron2_export.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader
from detectron2_export.data.datasets import register_coco_instances
from detectron2_export.engine import launch
from detectron2_export.evaluation import COCOEvaluator, DatasetEvaluator, inference_on_dataset
from detectron2_export.structures import Boxes, Instances
from detectron2_export.utils import comm

from ..data.helpers import SHAPES_IMAGES, shapes_subset

NUM_IMAGES = 5  # 3 + 2 over two ranks: an uneven tail


class GroundTruthModel:
    """Predicts each image's ground-truth boxes, shifted right by ``jitter * (k % 3)`` pixels for the k-th."""

    def __init__(self, coco: dict, jitter: float):
        self.anns: dict[int, list[dict]] = {im["id"]: [] for im in coco["images"]}
        for ann in coco["annotations"]:
            self.anns[ann["image_id"]].append(ann)
        self.jitter = jitter

    def __call__(self, inputs: list[dict]) -> list[dict]:
        outputs = []
        for input in inputs:
            anns = self.anns[input["image_id"]]
            boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
            boxes[:, 2:] += boxes[:, :2]
            boxes[:, 0::2] += self.jitter * (torch.arange(len(anns)) % 3)[:, None]
            instances = Instances((input["height"], input["width"]))
            instances.pred_boxes = Boxes(boxes)
            instances.scores = torch.linspace(1.0, 0.5, len(anns))
            instances.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)
            outputs.append({"instances": instances})
        return outputs


class SeenImages(DatasetEvaluator):
    """Records the image ids this rank processed, in order."""

    def reset(self) -> None:
        self.seen: list[int] = []

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        self.seen += [input["image_id"] for input in inputs]


def evaluate_here(name: str, json_file: str, output_dir: str | None) -> dict:
    """Both models on this process's shard; rank 0 gets every rank's results and image ids."""
    if name not in DatasetCatalog.list():  # spawned workers register the dataset themselves
        register_coco_instances(name, {}, json_file, SHAPES_IMAGES)
    with open(json_file) as f:
        coco = json.load(f)
    inputs = [{"image_id": im["id"], "height": im["height"], "width": im["width"]} for im in coco["images"]]
    loader = build_detection_test_loader(inputs, mapper=None)
    out = {}
    for jitter in (0.0, 3.0):
        seen = SeenImages()
        coco_evaluator = COCOEvaluator(name, tasks=("bbox",), output_dir=output_dir if jitter else None)
        results = inference_on_dataset(GroundTruthModel(coco, jitter), loader, [coco_evaluator, seen], progress=False)
        out[jitter] = comm.all_gather({"results": results, "seen": seen.seen})
    return out


@pytest.fixture()
def dataset(tmp_path):
    name = f"test_dist_{uuid.uuid4().hex[:8]}"
    json_file = str(tmp_path / f"{name}.json")
    with open(json_file, "w") as f:
        json.dump(shapes_subset(NUM_IMAGES), f)
    register_coco_instances(name, {}, json_file, SHAPES_IMAGES)
    yield name, json_file
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


@pytest.mark.slow
def test_two_processes_give_the_single_process_ap(dataset, tmp_path):
    name, json_file = dataset
    single_dir, shared_dir = str(tmp_path / "single"), str(tmp_path / "two")
    single = evaluate_here(name, json_file, single_dir)
    two = launch(evaluate_here, 2, args=(name, json_file, shared_dir), device="cpu", threads_per_worker=1)

    image_ids = sorted(im["id"] for im in shapes_subset(NUM_IMAGES)["images"])
    perfect, jittered = two[0.0], two[3.0]
    assert [r["seen"] for r in perfect] == [image_ids[:3], image_ids[3:]]  # contiguous shards, 3 + 2
    assert perfect[0]["results"]["bbox"]["AP"] == 100.0  # every image's predictions reached rank 0
    assert perfect[1]["results"] == {} and jittered[1]["results"] == {}  # only rank 0 reports
    assert single[3.0][0]["results"]["bbox"]["AP"] < 100.0  # the jitter costs AP...
    # ...the same with 1 or 2 processes, exactly (NaN == NaN for the absent large objects)
    np.testing.assert_equal(jittered[0]["results"], single[3.0][0]["results"])

    # rank 0 alone wrote the files, with every image's predictions in the single-process order
    assert sorted(os.listdir(shared_dir)) == sorted(os.listdir(single_dir)) == [
        "coco_instances_results.json", "instances_predictions.pth"
    ]
    results_json = "coco_instances_results.json"
    with open(os.path.join(shared_dir, results_json)) as a, open(os.path.join(single_dir, results_json)) as b:
        assert json.load(a) == json.load(b)
    predictions = torch.load(os.path.join(shared_dir, "instances_predictions.pth"))
    assert [p["image_id"] for p in predictions] == image_ids
