"""Steps shared by the CLIs: logging, config, model, sample inputs, output directory, evaluation.

Every user error raises a ``Detectron2ExportError`` whose message says what to do; :func:`run_main`
turns it into one ``<prog>: error: ...`` line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from ..errors import CheckpointError, ConfigError, Detectron2ExportError

__all__ = [
    "CLIError",
    "setup_logger",
    "setup_cfg",
    "build_and_load_model",
    "sample_inputs_from_dataset",
    "sample_inputs_from_image",
    "check_output_dir",
    "staged_output_dir",
    "evaluate",
    "run_main",
]

logger = logging.getLogger(__name__)

_PACKAGE_LOGGER = "detectron2_export"


class CLIError(Detectron2ExportError):
    """A user error of a command-line tool (bad flag combination, output directory in the way...)."""


class _CLIHandler(logging.StreamHandler):
    """The one handler :func:`setup_logger` installs (a second call replaces it). It writes to
    whatever ``sys.stderr`` is at the time of the record, so redirections are followed."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """Ignored: the stream is always the current sys.stderr."""


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments both CLIs end with: output directory, logging, and the config overrides."""
    parser.add_argument("--output", required=True, help="output directory for the converted model")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output directory")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG messages")
    parser.add_argument(
        "opts",
        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl MODEL.DEVICE cpu",
        default=None,
        nargs=argparse.REMAINDER,
    )


def setup_logger(verbose: bool = False) -> None:
    """Log the package's INFO (DEBUG with ``verbose``) messages to the current stderr, detectron2-style."""
    package_logger = logging.getLogger(_PACKAGE_LOGGER)
    for handler in [h for h in package_logger.handlers if isinstance(h, _CLIHandler)]:
        package_logger.removeHandler(handler)
    handler = _CLIHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s", "%m/%d %H:%M:%S"))
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def setup_cfg(config_file: str, opts: Sequence[str], *, export_config: bool = True):
    """detectron2's CLI config: defaults, (export options), the file, then ``KEY VALUE`` overrides; frozen."""
    from ..config import get_cfg
    from ..export.api import add_export_config

    if not config_file:
        raise CLIError("--config-file is required: pass the detectron2 YAML config of the model to export")
    if not os.path.isfile(config_file):
        raise CLIError(f"--config-file {config_file!r}: no such file (from {os.getcwd()!r})")
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    if export_config:
        cfg = add_export_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    device = cfg.MODEL.DEVICE
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"{config_file}: MODEL.DEVICE={device!r}, expected 'cpu' since CUDA is not available here "
            "(append MODEL.DEVICE cpu to the command)"
        )
    cfg.freeze()
    return cfg


def build_and_load_model(cfg) -> torch.nn.Module:
    """Build the model, load ``MODEL.WEIGHTS`` and set eval mode.

    Unlike detectron2's lenient loading, a checkpoint that leaves any weight of the model unloaded
    (missing key or wrong shape) is an error: exporting half-random weights is never intended.
    """
    from ..checkpoint import DetectionCheckpointer
    from ..modeling import build_model

    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise CLIError("MODEL.WEIGHTS is empty: append MODEL.WEIGHTS <path to a .pkl/.pth checkpoint> to the command")
    model = build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    try:
        checkpointer.load(weights)
    except CheckpointError as e:
        raise CheckpointError(f"MODEL.WEIGHTS: {e}") from e
    bad = checkpointer.incompatible_keys
    problems = [f"{k}: shape {tuple(c)} in the checkpoint, {tuple(m)} in the model" for k, c, m in bad.incorrect_shapes]
    wrong_shape = {k for k, _, _ in bad.incorrect_shapes}  # also reported as missing: they were not loaded
    problems += [f"{k}: missing from the checkpoint" for k in bad.missing_keys if k not in wrong_shape]
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise CheckpointError(
            f"MODEL.WEIGHTS={weights!r} does not fit the model built from the config "
            f"({len(problems)} weights not loaded):\n  {shown}\n"
            "Check that the config file and the checkpoint belong together (depth, channels, NUM_CLASSES)."
        )
    return model.eval()


def sample_inputs_from_dataset(cfg, model: torch.nn.Module, max_tries: int = 50) -> list[dict]:
    """The first batch of the ``DATASETS.TEST[0]`` test loader on which the model detects something.

    The Caffe2 trace follows the data: a sample without detections would export a graph that skips
    the mask / keypoint heads.
    """
    from ..data import build_detection_test_loader

    if not len(cfg.DATASETS.TEST):
        raise CLIError(
            "DATASETS.TEST is empty, but the sample input is taken from it: append DATASETS.TEST \"('shapes_val',)\" "
            "(export_model.py also accepts --sample-image PATH)"
        )
    dataset = cfg.DATASETS.TEST[0]
    loader = build_detection_test_loader(cfg, dataset)
    for i, batch in enumerate(loader):
        if i >= max_tries:
            break
        with torch.no_grad():
            outputs = model(batch)
        if "instances" not in outputs[0] or len(outputs[0]["instances"]) > 0:
            logger.info("Sample input from %s: %s", dataset, batch[0].get("file_name", f"image #{i}"))
            return batch
    raise CLIError(
        f"none of the first {max_tries} images of {dataset!r} gives a detection, but the export needs one "
        "(check that MODEL.WEIGHTS is a trained checkpoint for this config)"
    )


def sample_inputs_from_image(cfg, path: str) -> list[dict]:
    """``--sample-image``: read in ``INPUT.FORMAT`` and resize with the test-time transform."""
    from ..data import detection_utils
    from ..data.transforms import ResizeShortestEdge

    if not os.path.isfile(path):
        raise CLIError(f"--sample-image {path!r}: no such file")
    original = detection_utils.read_image(path, format=cfg.INPUT.FORMAT)
    height, width = original.shape[:2]
    aug = ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
    image = aug.get_transform(original).apply_image(original)
    image = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
    logger.info("Sample input: %s, resized from %dx%d to %dx%d", path, width, height, image.shape[2], image.shape[1])
    return [{"image": image, "height": height, "width": width, "file_name": path}]


def check_output_dir(path: str, overwrite: bool) -> None:
    """Refuse, before any work, an output that is a file or a non-empty directory (unless ``overwrite``)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"--output {path!r} exists and is not a directory; choose a directory path")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise CLIError(f"--output {path!r} exists and is not empty; choose another directory or pass --overwrite")


def _existing_ancestor(path: str) -> str:
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


@contextlib.contextmanager
def staged_output_dir(path: str) -> Iterator[str]:
    """Yield an empty temporary directory; when the block succeeds its files are moved into ``path``.

    The temporary directory lives in the nearest existing ancestor of ``path`` (same filesystem, so
    the moves are renames) and is always removed: a failed export leaves no file or directory behind.
    """
    path = os.path.abspath(path)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.partial-", dir=_existing_ancestor(path))
    try:
        yield tmp
        os.makedirs(path, exist_ok=True)
        for name in sorted(os.listdir(tmp)):
            dst = os.path.join(path, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(tmp, name), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate(model: Callable[[list[dict]], list[dict]], cfg, title: str) -> dict[str, Mapping[str, float]]:
    """COCO AP of ``model`` (anything callable on detectron2 inputs) on ``DATASETS.TEST[0]``, with a progress bar."""
    from ..data import build_detection_test_loader
    from ..evaluation import COCOEvaluator, inference_on_dataset, print_csv_format

    dataset = cfg.DATASETS.TEST[0]
    loader = build_detection_test_loader(cfg, dataset)
    logger.info("Evaluating the %s model on %s (%d images) ...", title, dataset, len(loader))
    results = inference_on_dataset(model, loader, COCOEvaluator(dataset, output_dir=None), desc=f"{title} on {dataset}")
    print_csv_format(results)
    return results


def run_main(main_fn: Callable[[list[str] | None], Any], argv: list[str] | None, prog: str) -> int:
    """Run a CLI body; an expected error becomes one ``<prog>: error: ...`` line on stderr and status 1."""
    try:
        main_fn(argv)
    except (Detectron2ExportError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0
