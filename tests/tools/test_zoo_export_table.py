"""tools/zoo_export_table.py: each exporter's verdict on a few configs, and the README's table is
the script's output (regenerate it with ``python tools/zoo_export_table.py`` when it fails)."""

from __future__ import annotations

import json
import os
import re

import pytest

from detectron2_export.cli.zoo_export_table import table, zoo_configs

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_verdicts_of_representative_configs():
    rows = _rows(
        table(["Misc/mask_rcnn_R_50_FPN_3x_dconv_c3-c5.yaml", "COCO-Detection/rpn_R_50_FPN_1x.yaml",
               "COCO-Detection/fcos_R_50_FPN_1x.py"])
    )
    arch, caffe2, onnx_, tracing = rows["Misc/mask_rcnn_R_50_FPN_3x_dconv_c3-c5.yaml"]
    assert arch == "GeneralizedRCNN" and caffe2.startswith("no: MODEL.RESNETS.DEFORM_ON_PER_STAGE")
    assert onnx_ == "yes (opset 19)" and tracing == "yes"
    arch, caffe2, onnx_, tracing = rows["COCO-Detection/rpn_R_50_FPN_1x.yaml"]
    assert arch == "ProposalNetwork" and caffe2.startswith("no") and onnx_.startswith("no") and tracing.startswith("no")
    arch, caffe2, onnx_, tracing = rows["COCO-Detection/fcos_R_50_FPN_1x.py"]  # a LazyConfig: keys from the model
    assert arch == "FCOS" and caffe2.startswith("no: MODEL.META_ARCHITECTURE='FCOS'")
    assert onnx_ == "yes (opset 17)" and tracing == "yes"


def test_every_zoo_config_is_listed():
    """The configs of upstream's key lists (59 YAML; 21 LazyConfig + the mmdet and torchvision ones)."""
    keys = os.path.join(os.path.dirname(README), "tests", "data", "zoo_keys")
    with open(os.path.join(keys, "index.json")) as f, open(os.path.join(keys, "index_lazy.json")) as g:
        expected = sorted(json.load(f)) + sorted(json.load(g))
    assert sorted(zoo_configs()) == sorted(expected) and len(expected) == 59 + 23


@pytest.mark.slow
def test_readme_table_is_the_scripts_output():
    text = open(README).read()
    match = re.search(r"<!-- zoo-export-table:start -->\n(.*?)\n<!-- zoo-export-table:end -->", text, re.S)
    assert match, "README.md has no zoo export table markers"
    assert _rows(match.group(1)) == _rows(table(zoo_configs()))
