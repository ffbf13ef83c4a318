"""Steps shared by the CLIs: config, model, sample inputs, output directory, evaluation."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Iterator

import torch

from ..errors import ConfigError, Detectron2ExportError

logger = logging.getLogger("detectron2_export")


class CLIError(Detectron2ExportError):
    """A user error the CLI reports as one line and exit status 1."""


def setup_logger(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="[%(asctime)s %(name)s %(levelname)s] %(message)s",
        datefmt="%m/%d %H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def setup_cfg(config_file: str, opts: list[str], *, export_config: bool = True):
    """detectron2's CLI config: defaults, export options, the file, then ``KEY VALUE`` overrides."""
    from ..config import get_cfg
    from ..export.api import add_export_config

    if not config_file:
        raise CLIError("--config-file is required: the detectron2 YAML config of the model to export")
    if not os.path.isfile(config_file):
        raise CLIError(f"--config-file {config_file!r}: no such file")
    if len(opts) % 2:
        raise CLIError(f"config overrides must be KEY VALUE pairs, got an odd number of items: {opts}")
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    if export_config:
        cfg = add_export_config(cfg)
    try:
        cfg.merge_from_file(config_file)
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError) as e:
        raise ConfigError(f"{config_file}: {e}") from e
    cfg.freeze()
    return cfg


def build_and_load_model(cfg) -> torch.nn.Module:
    """Build the model and load ``MODEL.WEIGHTS``; missing weights file or keys that do not fit is an error."""
    from ..checkpoint import DetectionCheckpointer
    from ..modeling import build_model

    model = build_model(cfg)
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise CLIError("MODEL.WEIGHTS is empty: pass MODEL.WEIGHTS <path to .pkl/.pth> after the flags")
    checkpointer = DetectionCheckpointer(model)
    checkpointer.load(weights)
    bad = checkpointer.incompatible_keys
    problems = [f"{k}: {c} in the checkpoint, {m} in the model" for k, c, m in bad.incorrect_shapes]
    problems += [f"{k}: missing from the checkpoint" for k in bad.missing_keys]
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise CLIError(
            f"MODEL.WEIGHTS {weights!r} does not fit the model built from the config "
            f"({len(problems)} keys):\n  {shown}\nCheck that the config and the weights belong together."
        )
    model.eval()
    return model


def sample_inputs_from_dataset(cfg, model: torch.nn.Module, max_tries: int = 50) -> list[dict]:
    """The first batch of the test loader on which the eager model detects something."""
    from ..data import build_detection_test_loader

    dataset = cfg.DATASETS.TEST[0] if len(cfg.DATASETS.TEST) else None
    if dataset is None:
        raise CLIError("DATASETS.TEST is empty: set it (e.g. DATASETS.TEST \"('shapes_val',)\") or pass --sample-image")
    loader = build_detection_test_loader(cfg, dataset)
    for i, batch in enumerate(loader):
        if i >= max_tries:
            break
        with torch.no_grad():
            outputs = model(batch)
        if "instances" not in outputs[0] or len(outputs[0]["instances"]) > 0:
            logger.info("Sample input: %s", batch[0].get("file_name", f"image #{i}"))
            return batch
    raise CLIError(
        f"none of the first {max_tries} images of {dataset!r} gives a detection: the Caffe2 trace needs "
        "a real image with real weights (check MODEL.WEIGHTS)"
    )


def sample_inputs_from_image(cfg, path: str) -> list[dict]:
    """``--sample-image``: read, resize with the test transform, as the test loader would."""
    from ..data import detection_utils
    from ..data.transforms import ResizeShortestEdge

    if not os.path.isfile(path):
        raise CLIError(f"--sample-image {path!r}: no such file")
    original = detection_utils.read_image(path, format=cfg.INPUT.FORMAT)
    height, width = original.shape[:2]
    aug = ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST)
    image = aug.get_transform(original).apply_image(original)
    image = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
    return [{"image": image, "height": height, "width": width, "file_name": path}]


def check_output_dir(path: str, overwrite: bool) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"--output {path!r} exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise CLIError(
            f"--output {path!r} exists and is not empty; choose another directory or pass --overwrite"
        )


@contextlib.contextmanager
def staged_output_dir(path: str) -> Iterator[str]:
    """Yield a temporary directory next to ``path``; on success its files are moved into ``path``.
    On failure nothing is left behind."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp", dir=parent)
    try:
        yield tmp
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(tmp):
            dst = os.path.join(path, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(tmp, name), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate(model: Any, cfg, output_dir: str | None, title: str) -> dict:
    """COCO evaluation of ``model`` (anything callable on detectron2 inputs) on ``DATASETS.TEST[0]``."""
    from ..data import build_detection_test_loader
    from ..evaluation import COCOEvaluator, inference_on_dataset

    dataset = cfg.DATASETS.TEST[0]
    logger.info("Evaluating the %s model on %s ...", title, dataset)
    loader = build_detection_test_loader(cfg, dataset)
    evaluator = COCOEvaluator(dataset, output_dir=output_dir)
    return inference_on_dataset(model, loader, evaluator)


def format_comparison(eager: dict, converted: dict, names: tuple[str, str] = ("PyTorch", "Caffe2")) -> str:
    """A side-by-side table of two evaluation results with their difference, task by task."""
    lines = []
    for task in eager:
        if task not in converted:
            continue
        lines.append(f"{task}:")
        lines.append(f"  {'metric':<16}{names[0]:>10}{names[1]:>10}{'delta':>10}")
        for metric, a in eager[task].items():
            b = converted[task].get(metric, float("nan"))
            lines.append(f"  {metric:<16}{a:>10.3f}{b:>10.3f}{b - a:>+10.3f}")
    return "\n".join(lines)


def run_main(main_fn, argv: list[str] | None) -> int:
    """Run a CLI body; expected errors become one clear line and exit status 1."""
    try:
        main_fn(argv)
    except (Detectron2ExportError, FileNotFoundError) as e:
        logging.getLogger("detectron2_export").error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
