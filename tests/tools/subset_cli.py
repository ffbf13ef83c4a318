"""``caffe2_converter.py`` (or ``export_model.py``) on the first images of the bundled shapes_val, for
the distributed tests.

Run as ``python tests/tools/subset_cli.py ARGS...`` with ``D2E_SUBSET_IMAGES=N`` and
``D2E_SUBSET_DIR=DIR`` in the environment: the dataset ``shapes_val_first<N>`` (its json in DIR)
is registered when this file is imported, so in the spawned workers too (they import the main
module, as a user's own script registering its datasets before ``launch``). With
``D2E_RESULTS=PATH`` the results returned on machine 0 are written there as json.
``D2E_TOOL=export_model`` runs export_model.py instead of caffe2_converter.py.
"""

from __future__ import annotations

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from detectron2_export.cli import caffe2_converter, export_model  # noqa: E402
from detectron2_export.cli.common import run_main  # noqa: E402
from detectron2_export.data.datasets import register_coco_instances  # noqa: E402
from detectron2_export.utils.file_io import atomic_write  # noqa: E402
from tests.data.helpers import SHAPES_IMAGES, shapes_subset  # noqa: E402


def subset_name(num_images: int) -> str:
    return f"shapes_val_first{num_images}"


def register_subset(num_images: int, directory: str) -> str:
    """Register ``shapes_val_first<N>``; its json is written once (atomically) if not there yet."""
    name = subset_name(num_images)
    json_file = os.path.join(directory, f"{name}.json")
    if not os.path.exists(json_file):
        with atomic_write(json_file, "w") as f:
            json.dump(shapes_subset(num_images), f)
    register_coco_instances(name, {}, json_file, SHAPES_IMAGES)
    return name


if "D2E_SUBSET_IMAGES" in os.environ:
    register_subset(int(os.environ["D2E_SUBSET_IMAGES"]), os.environ["D2E_SUBSET_DIR"])


TOOL = {"caffe2_converter": caffe2_converter, "export_model": export_model}[os.environ.get("D2E_TOOL", "caffe2_converter")]


def _main(argv: list[str]) -> None:
    results = TOOL.main(argv)
    if results and "D2E_RESULTS" in os.environ:
        with atomic_write(os.environ["D2E_RESULTS"], "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    raise SystemExit(run_main(_main, sys.argv[1:], TOOL.PROG))
