"""Steps shared by the CLIs: logging, config, model, sample inputs, output directory, evaluation,
and the launch flags that spread ``--run-eval`` over processes and machines (``engine.launch``).

The config is a yacs ``.yaml`` file (``KEY VALUE`` overrides) or a LazyConfig ``.py`` file
(``key=value`` overrides, as detectron2's lazyconfig tools): its model is ``cfg.model``, weights
``train.init_checkpoint``, device ``train.device``, test data ``dataloader.test`` and evaluator
``dataloader.evaluator`` (else a COCOEvaluator on ``dataloader.test.dataset.names``).

Every user error raises a ``Detectron2ExportError`` whose message says what to do, and any
``OSError`` is one too for the user; :func:`run_main` turns them into one ``<prog>: error: ...``
line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from datetime import timedelta
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import torch

from ..errors import CheckpointError, ConfigError, Detectron2ExportError
from ..utils import comm
from ..utils.file_io import staged_directory

__all__ = [
    "CLIError",
    "setup_logger",
    "add_launch_arguments",
    "launch_from_args",
    "export_once",
    "setup_cfg",
    "is_lazy_config",
    "config_device",
    "evaluation_dataset_name",
    "build_test_loader",
    "build_and_load_model",
    "sample_inputs_from_dataset",
    "calibration_inputs_from_dataset",
    "sample_inputs_from_image",
    "check_output_dir",
    "evaluate",
    "run_main",
]

logger = logging.getLogger(__name__)

_PACKAGE_LOGGER = "detectron2_export"

Model = TypeVar("Model")


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


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    """detectron2's launch flags (``--num-gpus``, ``--num-machines``, ``--machine-rank``, ``--dist-url``)
    plus CPU worker processes; they shard ``--run-eval`` (see :func:`launch_from_args`)."""
    from ..engine.launch import DEFAULT_CONNECT_TIMEOUT

    group = parser.add_argument_group("distributed evaluation (--run-eval)")
    group.add_argument("--num-gpus", type=int, default=1, help="processes per machine with MODEL.DEVICE cuda, one per GPU")
    group.add_argument(
        "--num-workers", type=int, default=1, help="processes per machine with MODEL.DEVICE cpu (gloo)"
    )
    group.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        help="torch threads of each CPU worker (default: the machine's cores divided among the workers)",
    )
    group.add_argument("--num-machines", type=int, default=1, help="total number of machines")
    group.add_argument("--machine-rank", type=int, default=0, help="the rank of this machine (unique per machine)")
    group.add_argument(
        "--dist-url",
        default="auto",
        help="tcp://HOST:PORT of machine 0, the same on every machine; 'auto' picks a free port (one machine)",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT.total_seconds(),
        metavar="SECONDS",
        help="how long the machines may take to join before the run fails, naming the missing ones",
    )


def launch_from_args(
    main_func: Callable[..., Any],
    args: argparse.Namespace,
    device: str,
    main_args: Sequence = (),
    *,
    single_process_only: str | None = None,
) -> Any:
    """Run ``main_func(*main_args)`` on every process the launch flags ask for (here, in this process,
    when there is one); returns its result on rank 0, None on the other machines.

    ``device`` is ``MODEL.DEVICE``: cuda means one process per GPU (``--num-gpus``), cpu means
    ``--num-workers`` processes. More than one process needs ``--run-eval``: only the evaluation
    is shared, the export runs once (:func:`export_once`). ``single_process_only``: why this run
    cannot be shared (an error if the flags ask for more than one process).
    """
    from ..engine import launch

    cuda = device.startswith("cuda")
    if cuda and args.num_workers != 1:
        raise CLIError(f"--num-workers {args.num_workers} with MODEL.DEVICE {device}: use --num-gpus (one process per GPU)")
    if not cuda and args.num_gpus != 1:
        raise CLIError(f"--num-gpus {args.num_gpus} with MODEL.DEVICE {device}: use --num-workers N for CPU processes")
    per_machine = args.num_gpus if cuda else args.num_workers
    for flag, value in (("--num-gpus", args.num_gpus), ("--num-workers", args.num_workers), ("--num-machines", args.num_machines)):
        if value < 1:
            raise CLIError(f"{flag}={value}, expected an int >= 1")
    if args.threads_per_worker is not None and args.threads_per_worker < 1:
        raise CLIError(f"--threads-per-worker={args.threads_per_worker}, expected an int >= 1")
    world_size = per_machine * args.num_machines
    if world_size > 1 and single_process_only:
        raise CLIError(f"{world_size} processes: {single_process_only}; drop the launch flags")
    if world_size > 1 and not args.run_eval:
        raise CLIError(
            f"{world_size} processes without --run-eval: the processes share the evaluation only "
            "(the export runs once); add --run-eval or drop the launch flags"
        )
    threads = args.threads_per_worker
    if threads is None and not cuda and per_machine > 1:
        threads = max(1, (os.cpu_count() or 1) // per_machine)
    return launch(
        main_func,
        per_machine,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=tuple(main_args),
        device="cuda" if cuda else "cpu",
        threads_per_worker=threads,
        connect_timeout=timedelta(seconds=args.connect_timeout),
    )


def setup_logger(verbose: bool = False) -> None:
    """Log the package's INFO (DEBUG with ``verbose``) messages to the current stderr, detectron2-style.

    Under torch.distributed, only rank 0 logs INFO; the other ranks log warnings and errors, prefixed
    with their rank (a spawned worker calls this again: it starts unconfigured).
    """
    package_logger = logging.getLogger(_PACKAGE_LOGGER)
    for handler in [h for h in package_logger.handlers if isinstance(h, _CLIHandler)]:
        package_logger.removeHandler(handler)
    handler = _CLIHandler()
    rank = comm.get_rank()
    prefix = f"[rank {rank}] " if comm.get_world_size() > 1 else ""
    handler.setFormatter(
        logging.Formatter(f"{prefix}[%(asctime)s %(name)s %(levelname)s] %(message)s", "%m/%d %H:%M:%S")
    )
    package_logger.addHandler(handler)
    level = logging.DEBUG if verbose else logging.INFO
    package_logger.setLevel(level if rank == 0 else max(level, logging.WARNING))


def setup_cfg(config_file: str, opts: Sequence[str], *, export_config: bool = True):
    """detectron2's CLI config: defaults, (export options), the file, then ``KEY VALUE`` overrides; frozen.

    A LazyConfig ``.py`` file is loaded as such, with ``key=value`` overrides (as detectron2's
    lazyconfig tools); its model is ``cfg.model``, its weights ``train.init_checkpoint``.
    """
    from ..config import get_cfg
    from ..export.api import add_export_config

    if not config_file:
        raise CLIError("--config-file is required: pass the detectron2 YAML config (or LazyConfig .py) of the model to export")
    if not os.path.isfile(config_file):
        raise CLIError(f"--config-file {config_file!r}: no such file (from {os.getcwd()!r})")
    if config_file.endswith(".py"):
        return _setup_lazy_cfg(config_file, opts)
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    if export_config:
        cfg = add_export_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    _check_device_available(config_file, "MODEL.DEVICE", cfg.MODEL.DEVICE, "MODEL.DEVICE cpu")
    cfg.freeze()
    return cfg


def _setup_lazy_cfg(config_file: str, opts: Sequence[str]):
    """A LazyConfig ``.py`` file with detectron2's ``key=value`` overrides (``train.init_checkpoint=W``)."""
    from ..config import LazyConfig

    bad = [o for o in opts if "=" not in o]
    if bad:
        raise CLIError(f"{config_file} is a LazyConfig: overrides {bad!r}, expected key=value (e.g. train.init_checkpoint=W)")
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config_file), list(opts))
    if "model" not in cfg:
        raise ConfigError(f"{config_file}: no 'model' in the LazyConfig, expected model = L(MetaArch)(...)")
    _check_device_available(config_file, "train.device", config_device(cfg), "train.device=cpu")
    return cfg


def _check_device_available(config_file: str, key: str, device: str, fix: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"{config_file}: {key}={device!r}, expected 'cpu' since CUDA is not available here "
            f"(append {fix} to the command)"
        )


def is_lazy_config(cfg: Any) -> bool:
    """True for a LazyConfig (omegaconf), False for a yacs CfgNode."""
    from ..config import CfgNode

    return not isinstance(cfg, CfgNode)


def config_device(cfg: Any) -> str:
    """``MODEL.DEVICE``; for a LazyConfig ``train.device`` (as detectron2's lazyconfig_train_net), cpu if unset."""
    if not is_lazy_config(cfg):
        return cfg.MODEL.DEVICE
    from omegaconf import OmegaConf

    return str(OmegaConf.select(cfg, "train.device", default=None) or "cpu")


def _lazy_test_part(cfg: Any, path: str, why: str):
    """``cfg.<path>`` (under ``dataloader.test``) of a LazyConfig, instantiated."""
    from omegaconf import OmegaConf

    from ..config import instantiate

    node = OmegaConf.select(cfg, path, default=None)
    if node is None:
        raise CLIError(
            f"the LazyConfig has no {path}, but {why}: add dataloader.test as in "
            "configs/common/data/coco.py (L(build_detection_test_loader)(dataset=..., mapper=...))"
        )
    return instantiate(node)


def evaluation_dataset_name(cfg: Any) -> str:
    """The dataset the CLIs sample and evaluate on: ``DATASETS.TEST[0]``, for a LazyConfig the (first)
    name in ``dataloader.test.dataset.names``."""
    if not is_lazy_config(cfg):
        if not len(cfg.DATASETS.TEST):
            raise CLIError(
                "DATASETS.TEST is empty, but the sample input is taken from it: append DATASETS.TEST \"('shapes_val',)\" "
                "(export_model.py also accepts --sample-image PATH)"
            )
        return cfg.DATASETS.TEST[0]
    from omegaconf import OmegaConf

    names = OmegaConf.select(cfg, "dataloader.test.dataset.names", default=None)
    if isinstance(names, str) or names is None:
        names = [names] if names else []
    if not len(names):
        raise CLIError(
            "dataloader.test.dataset.names is missing or empty, but the sample input and the evaluation use it: "
            "append dataloader.test.dataset.names=shapes_val (export_model.py also accepts --sample-image PATH)"
        )
    return str(names[0])


def build_test_loader(cfg: Any):
    """The test loader of ``DATASETS.TEST[0]``, for a LazyConfig ``instantiate(cfg.dataloader.test)``
    (its dataset, mapper, batch size and workers; sharded under torch.distributed)."""
    from ..data import build_detection_test_loader

    dataset = evaluation_dataset_name(cfg)
    if not is_lazy_config(cfg):
        return build_detection_test_loader(cfg, dataset)
    return _lazy_test_part(cfg, "dataloader.test", "the evaluation and the analysis iterate it")


def _test_mapper(cfg: Any):
    """The test-time DatasetMapper: from ``INPUT`` (yacs) or ``dataloader.test.mapper`` (LazyConfig)."""
    from ..data import DatasetMapper

    if is_lazy_config(cfg):
        return _lazy_test_part(cfg, "dataloader.test.mapper", "it reads and resizes the sample input")
    return DatasetMapper(cfg, False)


def build_and_load_model(cfg) -> torch.nn.Module:
    """Build the model, load ``MODEL.WEIGHTS`` and set eval mode.

    Unlike detectron2's lenient loading, a checkpoint that leaves any weight of the model unloaded
    (missing key or wrong shape) is an error: exporting half-random weights is never intended.
    """
    from ..checkpoint import DetectionCheckpointer
    from ..config import instantiate
    from ..modeling import build_model

    lazy = is_lazy_config(cfg)  # a LazyConfig: the model is cfg.model, weights train.init_checkpoint
    key = "train.init_checkpoint" if lazy else "MODEL.WEIGHTS"
    weights = (cfg.train.get("init_checkpoint") if "train" in cfg else None) if lazy else cfg.MODEL.WEIGHTS
    if not weights:
        raise CLIError("train.init_checkpoint is empty: append train.init_checkpoint=<path to a .pkl/.pth checkpoint>"
                       if lazy else "MODEL.WEIGHTS is empty: append MODEL.WEIGHTS <path to a .pkl/.pth checkpoint> to the command")
    model = instantiate(cfg.model).to(config_device(cfg)) if lazy else build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    try:
        checkpointer.load(weights)
    except CheckpointError as e:
        raise CheckpointError(f"{key}: {e}") from e
    bad = checkpointer.incompatible_keys
    problems = [f"{k}: shape {tuple(c)} in the checkpoint, {tuple(m)} in the model" for k, c, m in bad.incorrect_shapes]
    wrong_shape = {k for k, _, _ in bad.incorrect_shapes}  # also reported as missing: they were not loaded
    problems += [f"{k}: missing from the checkpoint" for k in bad.missing_keys if k not in wrong_shape]
    if problems:
        shown = "\n  ".join(problems[:10]) + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise CheckpointError(
            f"{key}={weights!r} does not fit the model built from the config "
            f"({len(problems)} weights not loaded):\n  {shown}\n"
            "Check that the config file and the checkpoint belong together (depth, channels, NUM_CLASSES)."
        )
    return model.eval()


def _test_batches(cfg, why: str) -> Iterator[list[dict]]:
    """The evaluation dataset's images in order, one per batch, as the test loader maps them
    (whatever the world size: what is read from it must not depend on the sharding)."""
    from ..data import InferenceSampler, build_detection_test_loader, get_detection_dataset_dicts

    if is_lazy_config(cfg):
        dicts = _lazy_test_part(cfg, "dataloader.test.dataset", why)
    else:
        dicts = get_detection_dataset_dicts([evaluation_dataset_name(cfg)], filter_empty=False)
    sampler = InferenceSampler(len(dicts), rank=0, world_size=1)
    return iter(build_detection_test_loader(dicts, mapper=_test_mapper(cfg), sampler=sampler))


def calibration_inputs_from_dataset(cfg, num_images: int) -> list[dict]:
    """The first ``num_images`` images of the evaluation dataset, mapped as the test loader does: what
    int8 quantization calibrates on (``export_onnx(..., quantize="int8", calibration=...)``)."""
    if num_images < 1:
        raise CLIError(f"--calibration-images {num_images}, expected at least 1")
    inputs = []
    for batch in _test_batches(cfg, "int8 calibration reads its images"):
        inputs.extend(batch)
        if len(inputs) >= num_images:
            break
    logger.info("Calibrating on the first %d images of %s", len(inputs), evaluation_dataset_name(cfg))
    return inputs[:num_images]


def sample_inputs_from_dataset(cfg, model: torch.nn.Module, max_tries: int = 50) -> list[dict]:
    """The first batch of the test loader (``DATASETS.TEST[0]``, or a LazyConfig's ``dataloader.test``
    dataset and mapper) on which the model detects something.

    The Caffe2 trace follows the data: a sample without detections would export a graph that skips
    the mask / keypoint heads.
    """
    dataset = evaluation_dataset_name(cfg)
    for i, batch in enumerate(_test_batches(cfg, "the sample input is taken from it")):
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
    """``--sample-image``: read and resized by the test-time mapper (``INPUT.FORMAT`` and
    ``INPUT.MIN/MAX_SIZE_TEST``, or a LazyConfig's ``dataloader.test.mapper``), as the test loader does."""
    if not os.path.isfile(path):
        raise CLIError(f"--sample-image {path!r}: no such file")
    sample = _test_mapper(cfg)({"file_name": path})  # the mapper fills in the original height and width
    height, width, image = sample["height"], sample["width"], sample["image"]
    logger.info("Sample input: %s, resized from %dx%d to %dx%d", path, width, height, image.shape[2], image.shape[1])
    return [{"image": image, "height": height, "width": width, "file_name": path}]


def check_output_dir(path: str, overwrite: bool) -> None:
    """Refuse, before any work, an output that is a file or a non-empty directory (unless ``overwrite``),
    or one that cannot be created: under a regular file, or in a place this process cannot write
    (checked by creating and removing a directory there, which also holds for root and read-only mounts)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f"--output {path!r} exists and is not a directory; choose a directory path")
    nearest = os.path.abspath(path)
    while not os.path.exists(nearest):
        nearest = os.path.dirname(nearest)
    if not os.path.isdir(nearest):
        raise CLIError(f"--output {path!r}: {nearest!r} is a file, not a directory; choose a path under a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".d2export-probe-", dir=nearest))
    except OSError as e:
        raise CLIError(f"--output {path!r}: cannot write in {nearest!r} ({e.strerror}); choose a writable directory") from e
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise CLIError(f"--output {path!r} exists and is not empty; choose another directory or pass --overwrite")


def export_once(export: Callable[[str], Model], output_dir: str, load: Callable[[str], Model]) -> Model:
    """The exported model on every rank, exported once, by rank 0.

    Rank 0 calls ``export(tmp)`` (which writes the files into ``tmp`` and returns the model) inside
    :func:`~detectron2_export.utils.file_io.staged_directory`, reads the finished files, moves them into its ``output_dir`` and
    broadcasts their bytes over the process group. On every other machine, local rank 0 writes
    them into that machine's ``output_dir`` (staged the same way: no shared filesystem is assumed,
    and nothing reads a half-written file); each rank then builds its model with ``load(dir)``,
    the other local ranks from a private temporary copy. In a world of one this is just the
    staged export.
    """
    if comm.is_main_process():
        with staged_directory(output_dir) as tmp:
            model = export(tmp)
            files = _read_tree(tmp) if comm.get_world_size() > 1 else {}
        comm.broadcast_object(files)
        return model
    files = comm.broadcast_object(None)
    if comm.get_local_rank() == 0:
        with staged_directory(output_dir) as tmp:
            _write_tree(tmp, files)
        return load(output_dir)
    with tempfile.TemporaryDirectory(prefix="d2export_rank_") as tmp:
        _write_tree(tmp, files)
        return load(tmp)


def _read_tree(root: str) -> dict[str, bytes]:
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _write_tree(root: str, files: Mapping[str, bytes]) -> None:
    for relpath, data in files.items():
        path = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def evaluate(model: Callable[[list[dict]], list[dict]], cfg, title: str) -> dict[str, Mapping[str, float]]:
    """COCO AP of ``model`` (anything callable on detectron2 inputs) on ``DATASETS.TEST[0]``, with a progress bar.

    For a LazyConfig, on ``instantiate(cfg.dataloader.test)`` with ``instantiate(cfg.dataloader.evaluator)``
    (a COCOEvaluator on the test dataset if it has none), as detectron2's lazyconfig_train_net.
    Under torch.distributed each rank runs its shard; rank 0 returns the AP of the whole dataset,
    the other ranks {}.
    """
    from ..config import instantiate
    from ..evaluation import COCOEvaluator, inference_on_dataset, print_csv_format

    dataset = evaluation_dataset_name(cfg)
    loader = build_test_loader(cfg)
    if is_lazy_config(cfg) and cfg.dataloader.get("evaluator") is not None:
        evaluator = instantiate(cfg.dataloader.evaluator)
    else:
        evaluator = COCOEvaluator(dataset, output_dir=None)
    world_size = comm.get_world_size()
    shards = f", {world_size} processes" if world_size > 1 else ""
    logger.info("Evaluating the %s model on %s (%d images%s) ...", title, dataset, len(loader.dataset), shards)
    results = inference_on_dataset(model, loader, evaluator, desc=f"{title} on {dataset}")
    if comm.is_main_process():
        print_csv_format(results)
    return results


def run_main(main_fn: Callable[[list[str] | None], Any], argv: list[str] | None, prog: str) -> int:
    """Run a CLI body; an expected error or any OSError (a file missing, unreadable or unwritable, a full
    disk...) becomes one ``<prog>: error: ...`` line on stderr and status 1."""
    try:
        main_fn(argv)
    except (Detectron2ExportError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0
