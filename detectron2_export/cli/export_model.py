"""``export_model.py`` (detectron2 v0.4+ ``tools/deploy/export_model.py``, SPEC 7.5, 8.2): export a
detectron2 model with a chosen method and format.

| --export-method | --format    | files                                             | --run-eval |
|-----------------|-------------|---------------------------------------------------|------------|
| caffe2_tracing  | caffe2      | model.pb, model_init.pb, model.pbtxt, model.svg   | yes        |
| caffe2_tracing  | onnx        | model.onnx (with Caffe2 custom ops)               | no         |
| caffe2_tracing  | torchscript | model.ts + TorchScript IR dumps                   | no         |
| tracing         | torchscript | model.ts + TorchScript IR dumps                   | yes        |
| tracing         | onnx        | model.onnx (standard ONNX, onnxruntime/TensorRT)  | yes        |
| scripting       | torchscript | model.ts + TorchScript IR dumps                   | no         |

``tracing`` + ``caffe2`` is refused (upstream silently exports nothing); ``scripting`` accepts
only ``torchscript``. ``--config-file`` is a yacs ``.yaml`` (``KEY VALUE`` overrides) or a LazyConfig
``.py`` (``key=value`` overrides; sample and evaluation from its ``dataloader.test``). This module
parses arguments and checks them; the exports are ``detectron2_export.export.deploy``'s functions.
``tracing`` + ``onnx`` with ``--quantize int8`` writes the int8 (QDQ) graph, calibrated on the first
``--calibration-images`` images of the evaluation dataset; ``--run-eval`` prints its AP beside PyTorch's.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Callable, Mapping

from ..evaluation import format_ap_comparison, format_ap_table
from ..export.deploy import (
    export_caffe2_tracing,
    export_scripting,
    export_tracing,
    is_evaluable_after_tracing,
    static_jit_fusion,
)
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
    calibration_inputs_from_dataset,
    sample_inputs_from_dataset,
    sample_inputs_from_image,
    setup_cfg,
    setup_logger,
    evaluation_dataset_name,
)

__all__ = ["get_parser", "main", "cli"]

logger = logging.getLogger(__name__)

PROG = "export_model.py"

# (method, format) pairs whose export returns a model Python can evaluate
EVALUABLE = {("caffe2_tracing", "caffe2"), ("tracing", "torchscript"), ("tracing", "onnx")}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Export a model for deployment.")
    parser.add_argument("--format", choices=["caffe2", "onnx", "torchscript"], default="torchscript")
    parser.add_argument(
        "--export-method", choices=["caffe2_tracing", "tracing", "scripting"], default="tracing"
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file (.yaml or LazyConfig .py)")
    parser.add_argument("--sample-image", default=None, type=str, help="sample image for input")
    parser.add_argument(
        "--run-eval",
        action="store_true",
        help="evaluate the exported model on DATASETS.TEST[0] (a .py config: dataloader.test and dataloader.evaluator)",
    )
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="tracing+onnx: onnxruntime static int8 quantization of backbone and heads (post-processing stays fp32)",
    )
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=16,
        metavar="N",
        help="--quantize int8: calibrate on the first N images of the evaluation dataset (default 16)",
    )
    add_launch_arguments(parser)
    add_output_arguments(parser)
    return parser


def _check_method_and_format(method: str, fmt: str, run_eval: bool, quantize: str | None = None) -> None:
    if quantize is not None and (method, fmt) != ("tracing", "onnx"):
        raise CLIError(
            f"--quantize {quantize} --export-method {method} --format {fmt}: quantization is for the "
            "standard ONNX export, use --export-method tracing --format onnx"
        )
    if method == "scripting" and fmt != "torchscript":
        raise CLIError(f"--export-method scripting --format {fmt}: Scripting only supports torchscript format.")
    if method == "tracing" and fmt == "caffe2":
        raise CLIError(
            "--export-method tracing --format caffe2: tracing exports torchscript or onnx; "
            "for Caffe2 use --export-method caffe2_tracing"
        )
    if run_eval and (method, fmt) not in EVALUABLE:
        raise CLIError(
            f"--run-eval: Python inference is not yet implemented for export_method={method}, format={fmt}. "
            "Evaluable pairs: " + ", ".join(f"{m}+{f}" for m, f in sorted(EVALUABLE))
        )


def main(argv: list[str] | None = None) -> Mapping[str, Mapping[str, float]]:
    """Run the tool; returns the evaluation results with ``--run-eval``, else {}."""
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logger.info("Command line arguments: %s", args)
    _check_method_and_format(args.export_method, args.format, args.run_eval, args.quantize)
    check_output_dir(args.output, args.overwrite)
    cfg = setup_cfg(args.config_file, args.opts or [], export_config=args.export_method == "caffe2_tracing")
    load = _load_exported(args.export_method, args.format)
    alone = None if load else f"{args.export_method}+{args.format} is evaluated in one process"
    return launch_from_args(export_and_evaluate, args, config_device(cfg), (args,), single_process_only=alone)


def _load_exported(method: str, fmt: str) -> Callable[[str], Callable] | None:
    """How ranks other than 0 load the files rank 0 exported; None: that pair is evaluated in one process."""
    if (method, fmt) == ("caffe2_tracing", "caffe2"):
        from ..export import Caffe2Model

        return Caffe2Model.load_protobuf
    if (method, fmt) == ("tracing", "onnx"):
        from ..export.onnx import OnnxRuntimeModel

        return lambda directory: OnnxRuntimeModel(os.path.join(directory, "model.onnx"))
    return None


def export_and_evaluate(args: argparse.Namespace) -> Mapping[str, Mapping[str, float]]:
    """One process's part of :func:`main`: rank 0 exports; with --run-eval every rank evaluates its shard.
    Traced graphs are not re-specialised meanwhile (:func:`static_jit_fusion`), so evaluation is fast."""
    setup_logger(args.verbose)
    with static_jit_fusion():
        return _export_and_evaluate(args)


def _export_and_evaluate(args: argparse.Namespace) -> Mapping[str, Mapping[str, float]]:
    cfg = setup_cfg(args.config_file, args.opts or [], export_config=args.export_method == "caffe2_tracing")
    model = build_and_load_model(cfg)
    if args.run_eval and (args.export_method, args.format) == ("tracing", "torchscript") and not is_evaluable_after_tracing(model):
        raise CLIError(
            f"--run-eval: Python inference is not yet implemented for {type(model).__name__} "
            "exported with export_method=tracing (only GeneralizedRCNN and RetinaNet)"
        )

    if args.export_method == "scripting":
        inputs = None  # scripting needs no sample input
    elif args.sample_image:
        inputs = sample_inputs_from_image(cfg, args.sample_image)
    else:
        inputs = sample_inputs_from_dataset(cfg, model)

    def export(tmp: str) -> Callable | None:
        """Writes the files into tmp; returns what --run-eval evaluates."""
        if args.export_method == "caffe2_tracing":
            return export_caffe2_tracing(cfg, model, inputs, args.format, tmp)
        if args.export_method == "scripting":
            return export_scripting(model, tmp)
        calibration = calibration_inputs_from_dataset(cfg, args.calibration_images) if args.quantize else None
        return export_tracing(model, inputs, args.format, tmp, cfg, quantize=args.quantize, calibration=calibration)

    exported_model = export_once(export, args.output, _load_exported(args.export_method, args.format))
    logger.info("Wrote %s to %s", ", ".join(sorted(os.listdir(args.output))), args.output)

    results: Mapping[str, Mapping[str, float]] = {}
    eager_results: Mapping[str, Mapping[str, float]] = {}
    if args.run_eval:
        logger.info("Running evaluation ... this takes a long time if you export to CPU.")
        if args.format == "onnx":  # the standard-ONNX model is evaluated beside PyTorch, as caffe2_converter does
            eager_results = evaluate(model, cfg, "PyTorch")
        results = evaluate(exported_model, cfg, f"{args.export_method}+{args.format}")
    if args.run_eval and comm.is_main_process():
        print(f"COCO AP of the {args.export_method}+{args.format} model on {evaluation_dataset_name(cfg)}:")
        print(format_ap_table(results))
        if eager_results:
            runtime = "onnxruntime int8" if args.quantize else "onnxruntime"
            print(format_ap_comparison({"PyTorch": eager_results, runtime: results}))
    logger.info("Success.")
    return results


def cli(argv: list[str] | None = None) -> int:
    """Console entry point: exit status 0 on success, 1 on a user error (message on stderr)."""
    return run_main(main, argv, PROG)


if __name__ == "__main__":
    raise SystemExit(cli())
