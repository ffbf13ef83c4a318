"""``analyze_model.py`` (detectron2's ``tools/analyze_model.py``): the cost of a model, for a config.

``--tasks`` any of ``flop`` (GFlops per operator and in total, averaged over ``-n`` inputs of
``DATASETS.TEST[0]``), ``activation`` (millions of activations, likewise), ``parameter`` (fvcore's
parameter table, 5 levels deep) and ``structure`` (the module tree). Flops and activations depend
on the input (the heads run per proposal / detection), hence the average. Example::

    python tools/analyze_model.py --config-file configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml \\
        --tasks flop parameter -n 10 MODEL.WEIGHTS models/mask_rcnn_R_18_FPN_shapes.pkl MODEL.DEVICE cpu

A LazyConfig ``.py`` file works too (``key=value`` overrides): its ``model`` is instantiated and the
inputs of ``flop`` / ``activation`` come from ``instantiate(cfg.dataloader.test)``, as upstream.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from typing import Any, Iterator

import numpy as np
import torch
import tqdm
from fvcore.nn import flop_count_table
from torch import nn

from ..utils.analysis import FlopCountAnalysis, activation_count_operators, parameter_count, parameter_count_table
from .common import CLIError, build_test_loader, is_lazy_config, run_main, setup_cfg, setup_logger

__all__ = ["TASKS", "get_parser", "main", "cli", "do_flop", "do_activation", "do_parameter", "do_structure"]

logger = logging.getLogger(__name__)

PROG = "analyze_model.py"
TASKS = ("flop", "activation", "parameter", "structure")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print the flops, activations, parameters or structure of the model of a detectron2 config.",
        epilog="--tasks takes every word up to the next flag: put the config overrides after another flag, "
        "e.g. --tasks flop --config-file FILE MODEL.WEIGHTS W",
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file (.yaml, or .py)")
    parser.add_argument("--tasks", choices=TASKS, required=True, nargs="+", help="what to print")
    parser.add_argument("-n", "--num-inputs", default=100, type=int,
                        help="number of inputs used to compute statistics for flops/activations, both are data dependent")
    parser.add_argument("--use-fixed-input-size", action="store_true",
                        help="replace each image by zeros of INPUT.CROP.SIZE[0] squared (an absolute crop size)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log DEBUG messages")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pkl MODEL.DEVICE cpu")
    return parser


def _build_model(cfg: Any, load_weights: bool) -> nn.Module:
    from ..checkpoint import DetectionCheckpointer
    from ..config import CfgNode, instantiate
    from ..modeling import build_model

    if isinstance(cfg, CfgNode):
        model = build_model(cfg)
        weights = cfg.MODEL.WEIGHTS
    else:
        model = instantiate(cfg.model)
        weights = cfg.get("train", {}).get("init_checkpoint", "")
    if load_weights:
        DetectionCheckpointer(model).load(weights)  # lenient, as upstream: the counts need no exact weights
    return model.eval()


def _inputs(cfg: Any, num_inputs: int, fixed_input_size: bool) -> Iterator[list[dict]]:
    """Up to ``num_inputs`` batches of the ``DATASETS.TEST[0]`` test loader (a LazyConfig's
    ``dataloader.test``), zero images if fixed.

    The arguments are checked at the call, before a model is built for nothing.
    """
    if num_inputs < 1:
        raise CLIError(f"--num-inputs={num_inputs}, expected an int >= 1")
    if is_lazy_config(cfg) and fixed_input_size:
        raise CLIError("--use-fixed-input-size with a LazyConfig .py file: expected a .yaml config "
                       "(the side of the fixed input is its INPUT.CROP.SIZE[0]); drop the flag")
    if not is_lazy_config(cfg) and not len(cfg.DATASETS.TEST):
        raise CLIError("DATASETS.TEST is empty, but the inputs are taken from it: "
                       "append DATASETS.TEST \"('shapes_val',)\"")
    side = None
    if fixed_input_size:
        if cfg.INPUT.CROP.TYPE != "absolute":
            raise CLIError(f"--use-fixed-input-size: INPUT.CROP.TYPE={cfg.INPUT.CROP.TYPE!r}, expected 'absolute' "
                           "(the side of the fixed input is INPUT.CROP.SIZE[0] pixels)")
        side = int(cfg.INPUT.CROP.SIZE[0])
    loader = build_test_loader(cfg)

    def batches() -> Iterator[list[dict]]:
        for _, batch in zip(tqdm.trange(num_inputs, desc="inputs"), loader):
            if side is not None:
                batch[0]["image"] = torch.zeros((3, side, side))
            yield batch

    return batches()


def do_flop(cfg: Any, num_inputs: int = 100, fixed_input_size: bool = False) -> dict[str, Any]:
    """Average GFlops per operator and mean/std of the total over the inputs; logs fvcore's table."""
    inputs = _inputs(cfg, num_inputs, fixed_input_size)
    model = _build_model(cfg, load_weights=True)
    counts: Counter = Counter()
    totals = []
    flops = None
    for idx, batch in enumerate(inputs):
        flops = FlopCountAnalysis(model, batch)
        if idx > 0:  # warn about unsupported ops and unused modules once
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        counts += flops.by_operator()
        totals.append(flops.total())
    average = {k: v / len(totals) / 1e9 for k, v in counts.items()}
    logger.info("Flops table computed from only one input sample:\n%s", flop_count_table(flops))
    logger.info("Average GFlops for each type of operators:\n%s", [(k, v) for k, v in average.items()])
    mean, std = float(np.mean(totals) / 1e9), float(np.std(totals) / 1e9)
    logger.info("Total GFlops: %.1f±%.1f", mean, std)
    return {"by_operator": average, "total_mean": mean, "total_std": std, "num_inputs": len(totals)}


def do_activation(cfg: Any, num_inputs: int = 100, fixed_input_size: bool = False) -> dict[str, Any]:
    """Average millions of activations per operator and mean/std of the total over the inputs."""
    inputs = _inputs(cfg, num_inputs, fixed_input_size)
    model = _build_model(cfg, load_weights=True)
    counts: Counter = Counter()
    totals = []
    for batch in inputs:
        count = activation_count_operators(model, batch)
        counts += count
        totals.append(sum(count.values()))
    average = {k: v / len(totals) for k, v in counts.items()}
    logger.info("(Million) Activations for Each Type of Operators:\n%s", [(k, v) for k, v in average.items()])
    mean, std = float(np.mean(totals)), float(np.std(totals))
    logger.info("Total (Million) Activations: %s±%s", mean, std)
    return {"by_operator": average, "total_mean": mean, "total_std": std, "num_inputs": len(totals)}


def do_parameter(cfg: Any) -> dict[str, Any]:
    """fvcore's parameter table (5 levels); returns the count per module name ("" is the total)."""
    model = _build_model(cfg, load_weights=False)
    logger.info("Parameter Count:\n%s", parameter_count_table(model, max_depth=5))
    return dict(parameter_count(model))


def do_structure(cfg: Any) -> str:
    """The module tree, as ``str(model)``."""
    structure = str(_build_model(cfg, load_weights=False))
    logger.info("Model Structure:\n%s", structure)
    return structure


def _load_config(config_file: str, opts: list[str]) -> Any:
    if config_file.endswith(".py"):
        from ..config import LazyConfig

        return LazyConfig.apply_overrides(LazyConfig.load(config_file), opts)
    return setup_cfg(config_file, opts, export_config=False)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the tasks in order; returns each task's result under its name."""
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logging.getLogger("fvcore").setLevel(logging.INFO)  # its table warnings, as upstream's setup_logger("fvcore")
    cfg = _load_config(args.config_file, list(args.opts or []))
    results: dict[str, Any] = {}
    for task in args.tasks:
        if task == "flop":
            results[task] = do_flop(cfg, args.num_inputs, args.use_fixed_input_size)
        elif task == "activation":
            results[task] = do_activation(cfg, args.num_inputs, args.use_fixed_input_size)
        elif task == "parameter":
            results[task] = do_parameter(cfg)
        else:
            results[task] = do_structure(cfg)
    return results


def cli(argv: list[str] | None = None) -> int:
    """Console entry point: exit status 0 on success, 1 on a user error (message on stderr)."""
    return run_main(main, argv, PROG)


if __name__ == "__main__":
    raise SystemExit(cli())
