"""``caffe2_converter.py`` (detectron2 v0.2-v0.3, SPEC 8.1): convert a detectron2 model to Caffe2 (or
ONNX / TorchScript) through the Caffe2-tracing path; ``--run-eval`` compares the COCO AP of the
PyTorch model and of the converted Caffe2 model.

Example::

    python tools/caffe2_converter.py --config-file configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml \\
        --output output/shapes_caffe2 --run-eval MODEL.WEIGHTS models/mask_rcnn_R_18_FPN_shapes.pkl MODEL.DEVICE cpu

A LazyConfig ``.py`` file works as well, with ``key=value`` overrides (``train.init_checkpoint=W
train.device=cpu``); the sample input and ``--run-eval`` then use its ``dataloader.test`` and
``dataloader.evaluator``. The export is ``detectron2_export.export.deploy.export_caffe2_tracing``.

With the launch flags (``--num-workers``, ``--num-gpus``, ``--num-machines``...) the evaluation is
sharded over processes: rank 0 exports, the other ranks get the files over the process group.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from typing import Mapping

from ..evaluation import format_ap_comparison
from ..export.deploy import export_caffe2_tracing
from ..utils import comm
from .common import (
    add_launch_arguments,
    add_output_arguments,
    CLIError,
    build_and_load_model,
    check_output_dir,
    config_device,
    evaluate,
    export_once,
    launch_from_args,
    run_main,
    sample_inputs_from_dataset,
    setup_cfg,
    setup_logger,
    evaluation_dataset_name,
)

__all__ = ["get_parser", "format_summary", "convert_and_evaluate", "main", "cli"]

logger = logging.getLogger(__name__)

PROG = "caffe2_converter.py"

Results = Mapping[str, Mapping[str, float]]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Convert a detectron2 model to Caffe2 via ONNX.")
    parser.add_argument("--format", choices=["caffe2", "onnx", "torchscript"], default="caffe2")
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file (.yaml or LazyConfig .py)")
    parser.add_argument(
        "--run-eval",
        action="store_true",
        help="evaluate the PyTorch and the Caffe2 model on DATASETS.TEST[0] (a .py config: dataloader.test)",
    )
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="--run-eval: run the Caffe2 model's convolutions and matrix products in this precision "
        "(bf16 where the CPU supports it); the files are fp32 either way",
    )
    add_launch_arguments(parser)
    add_output_arguments(parser)
    return parser


def format_summary(eager: Results, converted: Results, dataset: str) -> str:
    """One line: each task's AP before and after conversion and the difference."""
    parts = []
    for task in eager:
        if "AP" in eager[task] and "AP" in converted.get(task, {}):
            before, after = eager[task]["AP"], converted[task]["AP"]
            parts.append(f"{task} AP {before:.3f} -> {after:.3f} ({after - before:+.3f})")
    return f"Summary on {dataset}, PyTorch -> Caffe2: " + ("; ".join(parts) if parts else "no common AP metric")


def main(argv: list[str] | None = None) -> dict[str, Results]:
    """Run the tool; returns ``{"PyTorch": results, "Caffe2": results}`` with ``--run-eval``, else {}
    (on the other machines of a multi-machine run: None)."""
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logger.info("Command line arguments: %s", args)
    if args.run_eval and args.format != "caffe2":
        raise CLIError(
            f"--run-eval with --format {args.format}: Python inference in other format is not yet supported; "
            "use --format caffe2 or drop --run-eval"
        )
    check_output_dir(args.output, args.overwrite)
    cfg = setup_cfg(args.config_file, args.opts or [])
    return launch_from_args(convert_and_evaluate, args, config_device(cfg), (args,))


def convert_and_evaluate(args: argparse.Namespace) -> dict[str, Results]:
    """One process's part of :func:`main`: rank 0 exports; every rank evaluates its shard of both models."""
    from ..export import Caffe2Model

    setup_logger(args.verbose)
    cfg = setup_cfg(args.config_file, args.opts or [])
    model = build_and_load_model(cfg)

    def export(output_dir: str):
        return export_caffe2_tracing(cfg, model, sample_inputs_from_dataset(cfg, model), args.format, output_dir)

    caffe2_model = export_once(export, args.output, Caffe2Model.load_protobuf)
    logger.info("Wrote %s to %s", ", ".join(sorted(os.listdir(args.output))), args.output)
    if not args.run_eval:
        return {}
    caffe2_model.precision = args.precision  # read when the runtime is built, at the first call

    start = time.perf_counter()
    results = {"PyTorch": evaluate(model, cfg, "PyTorch"), "Caffe2": evaluate(caffe2_model, cfg, "Caffe2")}
    logger.info("Evaluated both models in %.1f s", time.perf_counter() - start)
    if not comm.is_main_process():
        return {}
    dataset = evaluation_dataset_name(cfg)
    runtime = "Caffe2" if args.precision == "fp32" else f"Caffe2 in {args.precision}"
    print(f"COCO AP on {dataset}, PyTorch vs {runtime} (delta = Caffe2 - PyTorch):")
    print(format_ap_comparison(results))
    print(format_summary(results["PyTorch"], results["Caffe2"], dataset))
    return results


def cli(argv: list[str] | None = None) -> int:
    """Console entry point: exit status 0 on success, 1 on a user error (message on stderr)."""
    return run_main(main, argv, PROG)


if __name__ == "__main__":
    raise SystemExit(cli())
