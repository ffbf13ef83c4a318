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
only ``torchscript``.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Callable, Dict, List, Mapping, Tuple

import torch
from torch import Tensor, nn

from ..evaluation import format_ap_comparison, format_ap_table
from ..structures import Boxes
from ..utils import comm
from .caffe2_converter import export_caffe2_tracing
from .common import (
    add_launch_arguments,
    add_output_arguments,
    CLIError,
    build_and_load_model,
    check_output_dir,
    evaluate,
    export_once,
    launch_from_args,
    run_main,
    sample_inputs_from_dataset,
    sample_inputs_from_image,
    setup_cfg,
    setup_logger,
)

__all__ = ["get_parser", "ScriptableAdapter", "export_scripting", "export_tracing", "main", "cli"]

logger = logging.getLogger(__name__)

PROG = "export_model.py"

# every Instances field used anywhere in the supported models, with its type (SPEC 7.5)
SCRIPTING_FIELDS = {
    "proposal_boxes": Boxes,
    "objectness_logits": Tensor,
    "pred_boxes": Boxes,
    "scores": Tensor,
    "pred_classes": Tensor,
    "pred_masks": Tensor,
    "pred_keypoints": Tensor,
    "pred_keypoint_heatmaps": Tensor,
}

# (method, format) pairs whose export returns a model Python can evaluate
EVALUABLE = {("caffe2_tracing", "caffe2"), ("tracing", "torchscript"), ("tracing", "onnx")}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Export a model for deployment.")
    parser.add_argument("--format", choices=["caffe2", "onnx", "torchscript"], default="torchscript")
    parser.add_argument(
        "--export-method", choices=["caffe2_tracing", "tracing", "scripting"], default="tracing"
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--sample-image", default=None, type=str, help="sample image for input")
    parser.add_argument("--run-eval", action="store_true", help="evaluate the exported model on DATASETS.TEST[0]")
    add_launch_arguments(parser)
    add_output_arguments(parser)
    return parser


class ScriptableAdapter(nn.Module):
    """Gives scripting the signature ``Tuple[Dict[str, Tensor]] -> List[Dict[str, Tensor]]`` for models
    called directly (RetinaNet: scripted, it returns raw instances)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, inputs: Tuple[Dict[str, torch.Tensor]]) -> List[Dict[str, Tensor]]:
        return [i.get_fields() for i in self.model(inputs)]


class ScriptableRCNNAdapter(ScriptableAdapter):
    """The same for GeneralizedRCNN, without post-processing (28x28 RoI masks). A separate class, not
    a flag: the compiler would compile both branches and fail on models without ``inference``."""

    def forward(self, inputs: Tuple[Dict[str, torch.Tensor]]) -> List[Dict[str, Tensor]]:
        return [i.get_fields() for i in self.model.inference(inputs, do_postprocess=False)]


def export_scripting(model: nn.Module, output_dir: str) -> None:
    """``scripting_with_instances`` of :class:`ScriptableAdapter`; writes model.ts and the IR dumps."""
    from ..export import dump_torchscript_IR, scripting_with_instances
    from ..modeling import GeneralizedRCNN

    adapter = ScriptableRCNNAdapter(model) if isinstance(model, GeneralizedRCNN) else ScriptableAdapter(model)
    ts_model = scripting_with_instances(adapter, SCRIPTING_FIELDS)
    ts_model.save(os.path.join(output_dir, "model.ts"))
    dump_torchscript_IR(ts_model, output_dir)


def export_tracing(model: nn.Module, inputs: list[dict], fmt: str, output_dir: str, cfg=None) -> Callable | None:
    """Trace the model on the first sample image; writes model.ts (+ IR) or model.onnx.

    ``onnx`` is the standard-ONNX export (``export_onnx``: every meta-architecture, post-processing
    in the graph, dynamic batch); it returns the :class:`OnnxRuntimeModel` of the file. For
    TorchScript and a GeneralizedRCNN / RetinaNet, returns a function with detectron2's model
    interface that runs the traced model and the final resize (which the export leaves out).
    """
    from ..export import TracingAdapter, dump_torchscript_IR
    from ..modeling import GeneralizedRCNN
    from ..modeling.postprocessing import detector_postprocess

    if fmt == "onnx":
        import onnx

        from ..export.onnx import OnnxRuntimeModel, export_onnx
        from ..export.onnx.export import required_opset

        onnx_model = export_onnx(cfg, model, inputs[:1], opset=required_opset(model))
        onnx.save(onnx_model, os.path.join(output_dir, "model.onnx"))
        return OnnxRuntimeModel(onnx_model)

    image = inputs[0]["image"]
    inputs = [{"image": image}]  # the other keys (height, width, file_name) are not traceable

    if isinstance(model, GeneralizedRCNN):

        def inference(model, inputs):
            # do_postprocess=False: RoI masks (28x28), not masks pasted into the image
            inst = model.inference(inputs, do_postprocess=False)[0]
            return [{"instances": inst}]

    else:
        inference = None  # the model is called directly

    traceable_model = TracingAdapter(model, inputs, inference)
    if fmt == "torchscript":
        ts_model = torch.jit.trace(traceable_model, (image,))
        ts_model.save(os.path.join(output_dir, "model.ts"))
        dump_torchscript_IR(ts_model, output_dir)
    else:
        raise CLIError(f"--export-method tracing: --format {fmt!r}, expected torchscript or onnx")
    logger.info("Inputs schema: %s", traceable_model.inputs_schema)
    logger.info("Outputs schema: %s", traceable_model.outputs_schema)

    if fmt != "torchscript" or not _is_evaluable_after_tracing(model):
        return None

    def eval_wrapper(inputs: list[dict]) -> list[dict]:
        """The traced model plus ``detector_postprocess`` (the resize to the original image size)."""
        input = inputs[0]
        instances = traceable_model.outputs_schema(ts_model(input["image"]))[0]["instances"]
        postprocessed = detector_postprocess(instances, input["height"], input["width"])
        return [{"instances": postprocessed}]

    return eval_wrapper


def _check_method_and_format(method: str, fmt: str, run_eval: bool) -> None:
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


def _is_evaluable_after_tracing(model: nn.Module) -> bool:
    from ..modeling import GeneralizedRCNN, RetinaNet

    return isinstance(model, (GeneralizedRCNN, RetinaNet))


def main(argv: list[str] | None = None) -> Mapping[str, Mapping[str, float]]:
    """Run the tool; returns the evaluation results with ``--run-eval``, else {}."""
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logger.info("Command line arguments: %s", args)
    _check_method_and_format(args.export_method, args.format, args.run_eval)
    check_output_dir(args.output, args.overwrite)
    cfg = setup_cfg(args.config_file, args.opts or [], export_config=args.export_method == "caffe2_tracing")
    load = _load_exported(args.export_method, args.format)
    alone = None if load else f"{args.export_method}+{args.format} is evaluated in one process"
    return launch_from_args(export_and_evaluate, args, cfg.MODEL.DEVICE, (args,), single_process_only=alone)


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
    """One process's part of :func:`main`: rank 0 exports; with --run-eval every rank evaluates its shard."""
    setup_logger(args.verbose)
    # no re-specialisation of the traced graph, so that evaluation is not slow
    torch._C._jit_set_fusion_strategy([("STATIC", 1)])  # upstream: _jit_set_bailout_depth(1), now deprecated
    cfg = setup_cfg(args.config_file, args.opts or [], export_config=args.export_method == "caffe2_tracing")
    model = build_and_load_model(cfg)
    if args.run_eval and (args.export_method, args.format) == ("tracing", "torchscript") and not _is_evaluable_after_tracing(model):
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
        return export_tracing(model, inputs, args.format, tmp, cfg)

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
        print(f"COCO AP of the {args.export_method}+{args.format} model on {cfg.DATASETS.TEST[0]}:")
        print(format_ap_table(results))
        if eager_results:
            print(format_ap_comparison({"PyTorch": eager_results, "onnxruntime": results}))
    logger.info("Success.")
    return results


def cli(argv: list[str] | None = None) -> int:
    """Console entry point: exit status 0 on success, 1 on a user error (message on stderr)."""
    return run_main(main, argv, PROG)


if __name__ == "__main__":
    raise SystemExit(cli())
