"""The export methods of detectron2's ``tools/deploy/export_model.py`` as functions, each writing its
files into a directory (the CLIs in ``detectron2_export.cli`` parse arguments and call these):

* :func:`export_caffe2_tracing`: ``Caffe2Tracer`` to caffe2 / onnx (Caffe2 custom ops) / torchscript;
* :func:`export_tracing`: ``TracingAdapter`` + ``torch.jit.trace`` (torchscript) or the
  standard-ONNX :func:`~detectron2_export.export.onnx.export_onnx` (onnx);
* :func:`export_scripting`: ``scripting_with_instances`` of a dict-returning adapter.

``cfg`` is the model's yacs config, its LazyConfig, or None where the model carries what the
export needs. Each returns what Python can evaluate on detectron2 inputs, or None.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

import torch
from torch import Tensor, nn

from ..errors import ExportError
from ..structures import Boxes

__all__ = [
    "SCRIPTING_FIELDS",
    "ScriptableAdapter",
    "ScriptableRCNNAdapter",
    "TracedModelEvaluator",
    "export_caffe2_tracing",
    "export_scripting",
    "export_tracing",
    "is_evaluable_after_tracing",
    "static_jit_fusion",
]

logger = logging.getLogger(__name__)

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


@contextlib.contextmanager
def static_jit_fusion() -> Iterator[None]:
    """No re-specialisation of traced graphs inside the block (upstream's ``_jit_set_bailout_depth(1)``,
    now deprecated), so that evaluating a traced model is not slow; the previous strategy is restored."""
    previous = torch._C._jit_set_fusion_strategy([("STATIC", 1)])
    try:
        yield
    finally:
        torch._C._jit_set_fusion_strategy(previous)


def export_caffe2_tracing(cfg: Any, model: nn.Module, inputs: list[dict], fmt: str, output_dir: str):
    """``Caffe2Tracer`` export to ``fmt``, files written into ``output_dir`` (SPEC 8.1 step 5).

    Returns the ``Caffe2Model`` for the caffe2 format (the one that can be evaluated), else None.
    """
    import onnx

    from .api import Caffe2Tracer
    from .torchscript import dump_torchscript_IR

    if fmt not in ("caffe2", "onnx", "torchscript"):
        raise ExportError(f"export_caffe2_tracing: fmt={fmt!r}, expected one of caffe2, onnx, torchscript")
    start = time.perf_counter()
    tracer = Caffe2Tracer(cfg, model, inputs)
    result = None
    if fmt == "caffe2":
        result = tracer.export_caffe2()
        result.save_protobuf(output_dir)
        result.save_graph(os.path.join(output_dir, "model.svg"), inputs=inputs)
    elif fmt == "onnx":
        onnx.save(tracer.export_onnx(), os.path.join(output_dir, "model.onnx"))
    else:
        ts_model = tracer.export_torchscript()
        ts_model.save(os.path.join(output_dir, "model.ts"))
        dump_torchscript_IR(ts_model, output_dir)
    logger.info("Exported %s to %s in %.1f s", type(model).__name__, fmt, time.perf_counter() - start)
    return result


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
    from ..modeling import GeneralizedRCNN
    from .torchscript import dump_torchscript_IR, scripting_with_instances

    adapter = ScriptableRCNNAdapter(model) if isinstance(model, GeneralizedRCNN) else ScriptableAdapter(model)
    ts_model = scripting_with_instances(adapter, SCRIPTING_FIELDS)
    ts_model.save(os.path.join(output_dir, "model.ts"))
    dump_torchscript_IR(ts_model, output_dir)


def is_evaluable_after_tracing(model: nn.Module) -> bool:
    """Whether :func:`export_tracing` to torchscript returns an evaluable model for ``model``."""
    from ..modeling import GeneralizedRCNN, RetinaNet

    return isinstance(model, (GeneralizedRCNN, RetinaNet))


class TracedModelEvaluator:
    """A traced GeneralizedRCNN / RetinaNet with detectron2's model interface: the traced model, its
    outputs rebuilt by the adapter's schema, plus ``detector_postprocess`` (the resize to the original
    image size, which the trace leaves out)."""

    def __init__(self, ts_model: torch.jit.ScriptModule, outputs_schema: Callable) -> None:
        self.ts_model = ts_model
        self.outputs_schema = outputs_schema

    def __call__(self, inputs: list[dict]) -> list[dict]:
        from ..modeling.postprocessing import detector_postprocess

        input = inputs[0]
        instances = self.outputs_schema(self.ts_model(input["image"]))[0]["instances"]
        return [{"instances": detector_postprocess(instances, input["height"], input["width"])}]


def _rcnn_inference(model: nn.Module, inputs: list[dict]) -> list[dict]:
    """The traced function of a GeneralizedRCNN: do_postprocess=False keeps RoI masks (28x28), not
    masks pasted into the image."""
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def export_tracing(
    model: nn.Module,
    inputs: list[dict],
    fmt: str,
    output_dir: str,
    cfg: Any = None,
    *,
    quantize: str | None = None,
    calibration: list[dict] | str | None = None,
) -> Callable | None:
    """Trace the model on the first sample image; writes model.ts (+ IR) or model.onnx.

    ``onnx`` is the standard-ONNX export (``export_onnx``: every meta-architecture, post-processing
    in the graph, dynamic batch; ``quantize="int8"`` with ``calibration`` inputs quantizes it); it
    returns the :class:`OnnxRuntimeModel` of the file. For TorchScript and a GeneralizedRCNN /
    RetinaNet, returns a :class:`TracedModelEvaluator`.
    """
    if quantize is not None and fmt != "onnx":
        raise ExportError(f"export_tracing: quantize={quantize!r} applies to fmt='onnx', not {fmt!r}")
    from ..modeling import GeneralizedRCNN
    from .flatten import TracingAdapter
    from .torchscript import dump_torchscript_IR

    if fmt == "onnx":
        import onnx

        from .onnx import OnnxRuntimeModel, export_onnx
        from .onnx.export import required_opset

        onnx_model = export_onnx(
            cfg, model, inputs[:1], opset=required_opset(model), quantize=quantize, calibration=calibration
        )
        onnx.save(onnx_model, os.path.join(output_dir, "model.onnx"))
        return OnnxRuntimeModel(onnx_model)
    if fmt != "torchscript":
        raise ExportError(f"export_tracing: fmt={fmt!r}, expected torchscript or onnx")

    image = inputs[0]["image"]
    inputs = [{"image": image}]  # the other keys (height, width, file_name) are not traceable
    inference = _rcnn_inference if isinstance(model, GeneralizedRCNN) else None  # None: called directly
    traceable_model = TracingAdapter(model, inputs, inference)
    ts_model = torch.jit.trace(traceable_model, (image,))
    ts_model.save(os.path.join(output_dir, "model.ts"))
    dump_torchscript_IR(ts_model, output_dir)
    logger.info("Inputs schema: %s", traceable_model.inputs_schema)
    logger.info("Outputs schema: %s", traceable_model.outputs_schema)
    if not is_evaluable_after_tracing(model):
        return None
    return TracedModelEvaluator(ts_model, traceable_model.outputs_schema)
