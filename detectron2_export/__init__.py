"""detectron2-export: detectron2's deployment module (Caffe2 via ONNX, ONNX, TorchScript) on today's PyTorch.

The export API is available at the top level too: ``from detectron2_export import Caffe2Tracer``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORT_NAMES = {
    "add_export_config",
    "Caffe2Model",
    "Caffe2Tracer",
    "export_caffe2_model",
    "export_onnx_model",
    "export_onnx",
    "OnnxRuntimeModel",
    "TracingAdapter",
    "scripting_with_instances",
    "dump_torchscript_IR",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORT_NAMES:
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
