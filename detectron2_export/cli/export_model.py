"""``export_model.py``: export a detectron2 model with a chosen method and format (detectron2's
``tools/deploy/export_model.py``, SPEC 7.5, 8.2).

| --export-method | --format    | files                                             | --run-eval |
| caffe2_tracing  | caffe2      | model.pb, model_init.pb, model.pbtxt, model.svg   | yes        |
| caffe2_tracing  | onnx        | model.onnx (with Caffe2 custom ops)               | no         |
| caffe2_tracing  | torchscript | model.ts + TorchScript IR dumps                   | no         |
| tracing         | torchscript | model.ts + TorchScript IR dumps                   | yes        |
| tracing         | onnx        | model.onnx (standard ops, opset 11)               | no         |
| scripting       | torchscript | model.ts + TorchScript IR dumps                   | no         |
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Callable, Dict, List, Tuple

import onnx
import torch
from torch import Tensor, nn

from ..structures import Boxes
from .caffe2_converter import export_caffe2_tracing
from .common import (
    CLIError,
    build_and_load_model,
    check_output_dir,
    evaluate,
    run_main,
    sample_inputs_from_dataset,
    sample_inputs_from_image,
    setup_cfg,
    setup_logger,
    staged_output_dir,
)

logger = logging.getLogger("detectron2_export")

SCRIPTING_FIELDS = {
    "proposal_boxes": Boxes,
    "objectness_logits": Tensor,
    "pred_boxes": Boxes,
    "scores": Tensor,
    "pred_classes": Tensor,
    "pred_masks": Tensor,
    "pred_keypoints": torch.Tensor,
    "pred_keypoint_heatmaps": torch.Tensor,
}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Export a detectron2 model")
    parser.add_argument("--format", choices=["caffe2", "onnx", "torchscript"], default="torchscript")
    parser.add_argument(
        "--export-method", choices=["caffe2_tracing", "tracing", "scripting"], default="tracing"
    )
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to config file")
    parser.add_argument("--sample-image", default=None, type=str, help="sample image for input")
    parser.add_argument("--run-eval", action="store_true")
    parser.add_argument("--output", required=True, help="output directory for the converted model")
    parser.add_argument("--overwrite", action="store_true", help="allow a non-empty output directory")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


class ScriptableAdapter(nn.Module):
    """Wraps a model so that scripting sees ``Tuple[Dict[str, Tensor]] -> List[Dict[str, Tensor]]``."""

    def __init__(self, model: nn.Module, is_rcnn: bool) -> None:
        super().__init__()
        self.model = model.eval()
        self.is_rcnn = is_rcnn

    def forward(self, inputs: Tuple[Dict[str, torch.Tensor]]) -> List[Dict[str, Tensor]]:
        if self.is_rcnn:
            instances = self.model.inference(inputs, do_postprocess=False)
        else:
            instances = self.model(inputs)
        return [i.get_fields() for i in instances]


def export_scripting(model: nn.Module, output_dir: str) -> None:
    from ..export import dump_torchscript_IR, scripting_with_instances
    from ..modeling import GeneralizedRCNN

    adapter = ScriptableAdapter(model, isinstance(model, GeneralizedRCNN))
    ts_model = scripting_with_instances(adapter, SCRIPTING_FIELDS)
    ts_model.save(os.path.join(output_dir, "model.ts"))
    dump_torchscript_IR(ts_model, output_dir)


def export_tracing(model: nn.Module, inputs: list[dict], fmt: str, output_dir: str) -> Callable | None:
    """Trace with ``TracingAdapter``; returns an evaluation wrapper for the torchscript format."""
    from ..export import STABLE_ONNX_OPSET_VERSION, TracingAdapter, dump_torchscript_IR
    from ..modeling import GeneralizedRCNN, RetinaNet
    from ..modeling.postprocessing import detector_postprocess

    assert torch.__version__ >= "1.8"
    image = inputs[0]["image"]
    inputs = [{"image": image}]  # remove other unused keys

    if isinstance(model, GeneralizedRCNN):

        def inference(model, inputs):
            # use do_postprocess=False so it returns ROI mask
            inst = model.inference(inputs, do_postprocess=False)[0]
            return [{"instances": inst}]

    else:
        inference = None  # assume that we just call the model directly

    traceable_model = TracingAdapter(model, inputs, inference)
    if fmt == "torchscript":
        ts_model = torch.jit.trace(traceable_model, (image,))
        ts_model.save(os.path.join(output_dir, "model.ts"))
        dump_torchscript_IR(ts_model, output_dir)
    else:
        torch.onnx.export(
            traceable_model,
            (image,),
            os.path.join(output_dir, "model.onnx"),
            opset_version=STABLE_ONNX_OPSET_VERSION,
            dynamo=False,
        )
        onnx.checker.check_model(os.path.join(output_dir, "model.onnx"))
    logger.info("Inputs schema: %s", traceable_model.inputs_schema)
    logger.info("Outputs schema: %s", traceable_model.outputs_schema)

    if fmt != "torchscript":
        return None
    if not isinstance(model, (GeneralizedRCNN, RetinaNet)):
        return None

    def eval_wrapper(inputs):
        """The exported model does not contain the final resize step, which is typically
        unused in deployment but needed for evaluation. We add it manually here."""
        input = inputs[0]
        instances = traceable_model.outputs_schema(ts_model(input["image"]))[0]["instances"]
        postprocessed = detector_postprocess(instances, input["height"], input["width"])
        return [{"instances": postprocessed}]

    return eval_wrapper


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logger(args.verbose)
    logger.info("Command line arguments: %s", args)
    if args.export_method == "scripting" and args.format != "torchscript":
        raise CLIError("--export-method scripting: Scripting only supports torchscript format.")
    if args.export_method == "tracing" and args.format == "caffe2":
        raise CLIError("--export-method tracing: the caffe2 format needs --export-method caffe2_tracing")

    evaluable = {("caffe2_tracing", "caffe2"), ("tracing", "torchscript")}
    if args.run_eval and (args.export_method, args.format) not in evaluable:
        raise CLIError(
            f"--run-eval: Python inference is not yet implemented for "
            f"export_method={args.export_method}, format={args.format}."
        )
    check_output_dir(args.output, args.overwrite)
    torch._C._jit_set_bailout_depth(1)  # do not re-specialize: keeps evaluation fast
    cfg = setup_cfg(args.config_file, args.opts or [], export_config=args.export_method == "caffe2_tracing")
    model = build_and_load_model(cfg)

    if args.export_method == "scripting":
        inputs = None
    elif args.sample_image:
        inputs = sample_inputs_from_image(cfg, args.sample_image)
    else:
        inputs = sample_inputs_from_dataset(cfg, model)

    exported_model = None
    with staged_output_dir(args.output) as tmp:
        if args.export_method == "caffe2_tracing":
            exported_model = export_caffe2_tracing(cfg, model, inputs, args.format, tmp)
        elif args.export_method == "scripting":
            export_scripting(model, tmp)
        else:
            exported_model = export_tracing(model, inputs, args.format, tmp)
    logger.info("Wrote %s to %s", ", ".join(sorted(os.listdir(args.output))), args.output)

    if args.run_eval:
        if exported_model is None:
            raise CLIError(f"--run-eval: {cfg.MODEL.META_ARCHITECTURE} cannot be evaluated after tracing")
        logger.info("Running evaluation ... this takes a long time if you export to CPU.")
        results = evaluate(exported_model, cfg, None, args.export_method)
        for task, metrics in results.items():
            print(f"{task}: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()))
    logger.info("Success.")


def cli(argv: list[str] | None = None) -> int:
    return run_main(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())
