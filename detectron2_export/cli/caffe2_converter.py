"""``caffe2_converter.py``: convert a detectron2 model to Caffe2 (or ONNX / TorchScript) through the
Caffe2-tracing path, and optionally compare the COCO AP of the converted model with PyTorch's.

Example::

    python tools/caffe2_converter.py --config-file configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml \\
        --output output/shapes_caffe2 --run-eval MODEL.WEIGHTS models/mask_rcnn_R_18_FPN_shapes.pkl
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import onnx

from .common import (
    CLIError,
    build_and_load_model,
    check_output_dir,
    evaluate,
    format_comparison,
    run_main,
    sample_inputs_from_dataset,
    setup_cfg,
    setup_logger,
    staged_output_dir,
)

logger = logging.getLogger("detectron2_export")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Convert a detectron2 model to Caffe2 via ONNX")
    parser.add_argument("--format", choices=["caffe2", "onnx", "torchscript"], default="caffe2")
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--run-eval", action="store_true", help="evaluate PyTorch and the converted model")
    parser.add_argument("--output", required=True, help="output directory for the converted model")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty output directory")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "opts",
        help="Modify config options using the command-line (KEY VALUE pairs)",
        default=None,
        nargs=argparse.REMAINDER,
    )
    return parser


def export_caffe2_tracing(cfg, model, inputs, fmt: str, output_dir: str):
    """Export with ``Caffe2Tracer`` and write the files of ``fmt`` into ``output_dir``.
    Returns the ``Caffe2Model`` for the caffe2 format, else None."""
    from ..export import Caffe2Tracer
    from ..export.torchscript import dump_torchscript_IR

    tracer = Caffe2Tracer(cfg, model, inputs)
    start = time.perf_counter()
    if fmt == "caffe2":
        caffe2_model = tracer.export_caffe2()
        caffe2_model.save_protobuf(output_dir)
        caffe2_model.save_graph(os.path.join(output_dir, "model.svg"), inputs=inputs)
        result = caffe2_model
    elif fmt == "onnx":
        onnx.save(tracer.export_onnx(), os.path.join(output_dir, "model.onnx"))
        result = None
    else:
        ts_model = tracer.export_torchscript()
        ts_model.save(os.path.join(output_dir, "model.ts"))
        dump_torchscript_IR(ts_model, output_dir)
        result = None
    logger.info("Exported to %s in %.1f s", fmt, time.perf_counter() - start)
    return result


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logger.info("Command line arguments: %s", args)
    if args.run_eval and args.format != "caffe2":
        raise CLIError("--run-eval: Python inference in other format is not yet supported; use --format caffe2")

    check_output_dir(args.output, args.overwrite)
    cfg = setup_cfg(args.config_file, args.opts or [])
    model = build_and_load_model(cfg)
    inputs = sample_inputs_from_dataset(cfg, model)

    with staged_output_dir(args.output) as tmp:
        caffe2_model = export_caffe2_tracing(cfg, model, inputs, args.format, tmp)
    files = sorted(os.listdir(args.output))
    logger.info("Wrote %s to %s", ", ".join(files), args.output)

    if args.run_eval:
        assert caffe2_model is not None
        eager = evaluate(model, cfg, None, "PyTorch")
        converted = evaluate(caffe2_model, cfg, None, "Caffe2")
        print(format_comparison(eager, converted))
        deltas = {t: converted[t]["AP"] - eager[t]["AP"] for t in eager if t in converted and "AP" in eager[t]}
        summary = ", ".join(f"{t} AP {eager[t]['AP']:.3f} -> {converted[t]['AP']:.3f} ({d:+.3f})" for t, d in deltas.items())
        print(f"Summary: {summary}")


def cli(argv: list[str] | None = None) -> int:
    return run_main(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())
