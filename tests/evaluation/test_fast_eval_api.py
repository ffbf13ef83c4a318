"""COCOeval_opt (faster-coco-eval) against pycocotools' COCOeval on the bundled shapes val set."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pycocotools.mask as mask_util
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detectron2_export.evaluation.fast_eval_api import COCOeval_opt

from ..data.helpers import SHAPES_JSON, load_shapes_json, registered_coco, shapes_subset
from .test_coco_evaluation import HALF_RECALL_AP, evaluate_gt


def _rle(mask: np.ndarray) -> dict:
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def perturbed_predictions(coco: dict, seed: int = 0) -> list[dict]:
    """COCO results with every kind of error AP counts: two jittered copies of each ground truth
    (shifted masks and keypoints, 10% with a wrong class) and three random boxes per image."""
    rng = np.random.default_rng(seed)
    images = {im["id"]: im for im in coco["images"]}
    results = []
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        for _ in range(2):
            jitter = rng.normal(0, 0.08, 4) * [w, h, w, h]
            shift = rng.integers(-3, 4, 2)
            mask = np.roll(mask_util.decode(ann["segmentation"]), tuple(int(s) for s in shift), axis=(0, 1))
            corners = [x, y, 2, x + w, y, 2, x, y + h, 2]  # for shapes without keypoints (not evaluated)
            keypoints = np.asarray(ann.get("keypoints", corners), dtype=np.float64).reshape(-1, 3)
            keypoints[:, :2] += rng.normal(0, 2.0, (len(keypoints), 2))
            category = ann["category_id"] if rng.random() > 0.1 else int(rng.integers(1, 4))
            results.append({
                "image_id": ann["image_id"], "category_id": category, "score": float(rng.random()),
                "bbox": [x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3])],
                "segmentation": _rle(mask), "keypoints": keypoints.ravel().tolist(),
            })
    for image_id, im in images.items():
        for _ in range(3):
            w, h = rng.uniform(5, im["width"] / 2), rng.uniform(5, im["height"] / 2)
            x, y = rng.uniform(0, im["width"] - w), rng.uniform(0, im["height"] - h)
            mask = np.zeros((im["height"], im["width"]), dtype=np.uint8)
            mask[int(y):int(y + h), int(x):int(x + w)] = 1
            keypoints = [x, y, 2, x + w, y, 2, x, y + h, 2]
            results.append({
                "image_id": image_id, "category_id": int(rng.integers(1, 4)), "score": float(rng.random() / 2),
                "bbox": [x, y, w, h], "segmentation": _rle(mask), "keypoints": keypoints,
            })
    return results


def run_cocoeval(cls: type, coco_gt: COCO, results: list[dict], iou_type: str) -> COCOeval:
    """evaluate/accumulate/summarize as COCOEvaluator does (segm results without boxes)."""
    results = copy.deepcopy(results)
    if iou_type == "segm":
        for r in results:
            r.pop("bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = cls(coco_gt, coco_gt.loadRes(results), iou_type)
        if iou_type == "keypoints":  # only triangles have (three) keypoints
            coco_eval.params.catIds = [3]
            coco_eval.params.kpt_oks_sigmas = np.array([0.05, 0.08, 0.1])
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


@pytest.fixture(scope="module")
def shapes_gt() -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(SHAPES_JSON)


@pytest.fixture(scope="module")
def shapes_results() -> list[dict]:
    return perturbed_predictions(load_shapes_json())


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_same_numbers_as_pycocotools_on_shapes_val(shapes_gt, shapes_results, iou_type):
    reference = run_cocoeval(COCOeval, shapes_gt, shapes_results, iou_type)
    fast = run_cocoeval(COCOeval_opt, shapes_gt, shapes_results, iou_type)
    assert len(fast.stats) == len(reference.stats)  # pycocotools' summary: 12 (10 for keypoints)
    # the acceptance bound is 1e-4 AP (percent); measured: equal to 1e-15
    np.testing.assert_allclose(fast.stats, reference.stats, rtol=0, atol=1e-6)
    for field in ("precision", "recall", "scores"):
        np.testing.assert_allclose(fast.eval[field], reference.eval[field], rtol=0, atol=1e-6, err_msg=field)
    assert 0.2 < reference.stats[0] < 0.9  # the perturbation gives a non-trivial AP


def test_same_numbers_on_a_subset_of_images(shapes_gt, shapes_results):
    """params.imgIds set after construction, as COCOEvaluator.evaluate(img_ids=...) does."""
    evals = []
    for cls in (COCOeval, COCOeval_opt):
        with contextlib.redirect_stdout(io.StringIO()):
            coco_eval = cls(shapes_gt, shapes_gt.loadRes(copy.deepcopy(shapes_results)), "bbox")
            coco_eval.params.imgIds = sorted(shapes_gt.getImgIds())[:17]
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        evals.append(coco_eval)
    np.testing.assert_allclose(evals[1].stats, evals[0].stats, rtol=0, atol=1e-6)


def test_hand_computed_half_recall(tmp_path):
    """One image with two squares; the only prediction is one of them, exactly: recall 1/2, AP 51/101."""
    coco = shapes_subset(200, keep_category_ids=(2,))
    image_id = next(a["image_id"] for a in coco["annotations"]
                    if sum(b["image_id"] == a["image_id"] for b in coco["annotations"]) == 2)
    coco["images"] = [im for im in coco["images"] if im["id"] == image_id]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] == image_id]
    found = coco["annotations"][0]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco
        gt.createIndex()
    results = [{"image_id": image_id, "category_id": 2, "score": 0.9, "bbox": found["bbox"]}]
    fast = run_cocoeval(COCOeval_opt, gt, results, "bbox")
    assert fast.stats[0] * 100 == pytest.approx(HALF_RECALL_AP, abs=1e-9)
    assert fast.stats[8] == pytest.approx(0.5, abs=1e-12)  # AR@100


@pytest.mark.parametrize("use_fast_impl", [True, False])
def test_coco_evaluator_switch(tmp_path, use_fast_impl):
    """COCOEvaluator gives the same (perfect) AP with both implementations, fast by default."""
    with registered_coco(shapes_subset(5), str(tmp_path)) as name:
        results = evaluate_gt(name, use_fast_impl=use_fast_impl)
    assert results["bbox"]["AP"] == pytest.approx(100.0, abs=1e-9)
    assert results["segm"]["AP"] == pytest.approx(100.0, abs=1e-9)


def test_fast_impl_is_the_default(monkeypatch, tmp_path):
    used = []
    original_evaluate = COCOeval_opt.evaluate
    monkeypatch.setattr(COCOeval_opt, "evaluate", lambda self: (used.append(self.params.iouType),
                                                                 original_evaluate(self))[1])
    with registered_coco(shapes_subset(3), str(tmp_path)) as name:
        evaluate_gt(name)
    assert sorted(used) == ["bbox", "segm"]
