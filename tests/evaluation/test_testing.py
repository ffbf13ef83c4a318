import logging
import math

from yacs.config import CfgNode

from detectron2_export.evaluation import format_ap_comparison, format_ap_table, print_csv_format, verify_results
from detectron2_export.evaluation.tables import create_small_table
from detectron2_export.evaluation.testing import flatten_results_dict

RESULTS = {
    "bbox": {
        "AP": 41.467, "AP50": 60.741, "AP75": 47.12, "APs": 32.44, "APm": 43.695, "APl": 44.799, "AP-circle": 53.186
    },
    "segm": {"AP": 47.743, "AP50": 60.434, "AP75": 54.828, "APs": 25.492, "APm": 50.576, "APl": 68.759},
}


def test_print_csv_format(caplog):
    with caplog.at_level(logging.INFO, logger="detectron2_export.evaluation.testing"):
        print_csv_format({**RESULTS, "extra": 3})
    assert caplog.messages == [
        "copypaste: Task: bbox",
        "copypaste: AP,AP50,AP75,APs,APm,APl",
        "copypaste: 41.4670,60.7410,47.1200,32.4400,43.6950,44.7990",
        "copypaste: Task: segm",
        "copypaste: AP,AP50,AP75,APs,APm,APl",
        "copypaste: 47.7430,60.4340,54.8280,25.4920,50.5760,68.7590",
        "copypaste: extra=3",
    ]


def test_create_small_table():
    assert create_small_table({"AP": 41.4671, "AP50": float("nan")}).splitlines() == [
        "|   AP   |  AP50  |",
        "|:------:|:------:|",
        "| 41.467 |  nan   |",
    ]


def test_format_ap_table_one_row_per_task():
    assert format_ap_table(RESULTS).splitlines() == [
        "| task   | AP     | AP50   | AP75   | APs    | APm    | APl    | AP-circle   |",
        "|:-------|:-------|:-------|:-------|:-------|:-------|:-------|:------------|",
        "| bbox   | 41.467 | 60.741 | 47.120 | 32.440 | 43.695 | 44.799 | 53.186      |",
        "| segm   | 47.743 | 60.434 | 54.828 | 25.492 | 50.576 | 68.759 |             |",  # no AP-circle
    ]


def test_format_ap_comparison_has_delta():
    other = {"bbox": {"AP": 41.5, "AP-circle": 53.0}, "segm": {"AP": 47.7}}
    table = format_ap_comparison({"eager": RESULTS, "caffe2": other})
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()]
    assert rows[0] == ["task", "metric", "eager", "caffe2", "delta"]
    assert ["bbox", "AP", "41.467", "41.500", "0.033"] in rows
    assert ["bbox", "AP-circle", "53.186", "53.000", "-0.186"] in rows
    assert ["segm", "AP50", "60.434", "", ""] in rows


def test_verify_results_and_flatten():
    cfg = CfgNode({"TEST": {"EXPECTED_RESULTS": [["bbox", "AP", 41.4, 0.1]]}})
    assert verify_results(cfg, RESULTS)
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 40.0, 0.1]]
    assert not verify_results(cfg, RESULTS)
    cfg.TEST.EXPECTED_RESULTS = [["bbox", "AP", 40.0, 0.1]]
    assert not verify_results(cfg, {"bbox": {"AP": math.nan}})
    assert flatten_results_dict({"bbox": {"AP": 1.0}, "x": 2}) == {"bbox/AP": 1.0, "x": 2}
