"""Shared pieces of the CLI tests: the bundled shapes model, small test-time sizes, a 10-image dataset."""

from __future__ import annotations

import logging
import os

import pytest

from tests.data.helpers import registered_coco, shapes_subset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml")
WEIGHTS = os.path.join(REPO, "models", "mask_rcnn_R_18_FPN_shapes.pkl")
SHAPES_IMAGES = os.path.join(REPO, "datasets", "shapes", "val")

# the bundled model on CPU; smaller test-time images than its config's 288/384 keep the exports fast
MODEL_OPTS = ["MODEL.WEIGHTS", WEIGHTS, "MODEL.DEVICE", "cpu"]
SMALL_OPTS = MODEL_OPTS + ["INPUT.MIN_SIZE_TEST", "160", "INPUT.MAX_SIZE_TEST", "224"]


@pytest.fixture(scope="session")
def shapes_val_10(tmp_path_factory):
    """Name of a registered dataset: the first 10 images of shapes_val (for --run-eval tests)."""
    with registered_coco(shapes_subset(10), str(tmp_path_factory.mktemp("shapes_val_10"))) as name:
        yield name


def only_entries(directory) -> list[str]:
    """Everything in ``directory`` (hidden entries too), sorted."""
    return sorted(os.listdir(directory))


@pytest.fixture(autouse=True)
def restore_package_logger():
    """The CLIs configure the "detectron2_export" logger (handler, level); undo it after each test."""
    package_logger = logging.getLogger("detectron2_export")
    handlers, level = list(package_logger.handlers), package_logger.level
    yield
    package_logger.handlers[:] = handlers
    package_logger.setLevel(level)
