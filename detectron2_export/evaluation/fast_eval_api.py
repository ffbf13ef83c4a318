"""``COCOeval_opt``: pycocotools' COCOeval with the per-image matching and accumulation in C++.

detectron2 ships its own C++ extension for this; here the maintained ``faster-coco-eval`` package
provides the same split (IoUs per image/category, then matching and accumulation in C++). Its
results equal pycocotools' to float rounding (measured on the bundled shapes val set, bbox and segm:
``tests/evaluation/test_fast_eval_api.py``; speed: ``benchmarks/coco_eval_speed.py``). It takes
pycocotools ``COCO`` objects, and ``summarize`` is pycocotools' own, so ``stats`` has the same 12
entries and the printed summary is the same text.
"""

from __future__ import annotations

from typing import Any

from faster_coco_eval import COCOeval_faster
from pycocotools.cocoeval import COCOeval

__all__ = ["COCOeval_opt"]


class COCOeval_opt(COCOeval_faster):
    """Drop-in for ``pycocotools.cocoeval.COCOeval`` (``COCOeval_opt(cocoGt, cocoDt, iouType)``).

    As upstream's, ``evaluate()`` does not fill ``evalImgs`` (the Python-side bottleneck) and
    ``accumulate()`` uses the parameters ``evaluate()`` saw.
    """

    def __init__(self, cocoGt: Any = None, cocoDt: Any = None, iouType: str = "segm") -> None:
        # print, like pycocotools: callers (COCOEvaluator) capture stdout and log it
        super().__init__(None, None, iouType, print_function=print)
        # pycocotools' defaults: every image and category of the ground truth, for every iouType
        # (faster-coco-eval's own constructor needs its COCO class for keypoints)
        self.cocoGt, self.cocoDt = cocoGt, cocoDt
        if cocoGt is not None:
            self.params.imgIds = sorted(cocoGt.getImgIds())
            self.params.catIds = sorted(cocoGt.getCatIds())

    def summarize(self) -> None:
        """pycocotools' summary: the same 12 ``stats`` and the same printed table."""
        COCOeval.summarize(self)
