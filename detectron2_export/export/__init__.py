"""detectron2.export re-implemented: Caffe2 (via ONNX), ONNX and TorchScript export.

Names are resolved lazily so that importing one submodule (e.g. the ONNX -> Caffe2 converter) does
not pull in the whole model family.
"""

from __future__ import annotations

import importlib
from typing import Any

STABLE_ONNX_OPSET_VERSION = 11

_EXPORTS = {
    "add_export_config": "api",
    "Caffe2Model": "api",
    "Caffe2Tracer": "api",
    "export_caffe2_model": "api",
    "export_onnx_model": "api",
    "export_onnx": "onnx",
    "OnnxRuntimeModel": "onnx",
    "TracingAdapter": "flatten",
    "scripting_with_instances": "torchscript",
    "dump_torchscript_IR": "torchscript",
}

__all__ = sorted(_EXPORTS) + ["STABLE_ONNX_OPSET_VERSION"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return __all__
