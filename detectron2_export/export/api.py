"""Public surface of the Caffe2 export: ``Caffe2Tracer``, ``Caffe2Model``, ``add_export_config``."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import Any

import torch
from torch import nn

from omegaconf import DictConfig

from ..config import CfgNode
from ..errors import ExportAssertionError, ExportError
from ..layers import DeformConv, ModulatedDeformConv
from ..modeling.proposal_generator.rpn import RPN
from ..utils.file_io import staged_directory
from .caffe2_modeling import META_ARCH_CAFFE2_EXPORT_TYPE_MAP, convert_batched_inputs_to_c2_format
from .lazy_cfg import caffe2_cfg_from_model
from .protobuf_utils import get_pb_arg_floats, get_pb_arg_vali, get_pb_arg_vals

logger = logging.getLogger(__name__)

__all__ = ["add_export_config", "Caffe2Model", "Caffe2Tracer", "export_caffe2_model", "export_onnx_model"]


def add_export_config(cfg: CfgNode) -> CfgNode:
    """Add the ``EXPORT_CAFFE2`` options to ``cfg`` (in place; also returned), as detectron2 v0.1-v0.6."""
    is_frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.EXPORT_CAFFE2 = CfgNode()
    cfg.EXPORT_CAFFE2.USE_HEATMAP_MAX_KEYPOINT = False
    if is_frozen:
        cfg.freeze()
    return cfg


class UnsupportedArchitectureError(ExportError, KeyError):
    """The meta-architecture has no Caffe2-compatible rewrite."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _check_exportable(cfg: CfgNode, model: nn.Module, inputs: Any) -> None:
    """Everything the Caffe2 path cannot export fails here, before anything is traced or written."""
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch not in META_ARCH_CAFFE2_EXPORT_TYPE_MAP:
        raise UnsupportedArchitectureError(
            f"Caffe2Tracer: MODEL.META_ARCHITECTURE={arch!r}, expected one of "
            f"{sorted(META_ARCH_CAFFE2_EXPORT_TYPE_MAP)}"
        )
    deform = list(cfg.MODEL.get("RESNETS", {}).get("DEFORM_ON_PER_STAGE", []))
    if any(deform):
        raise ExportError(
            f"Caffe2Tracer: MODEL.RESNETS.DEFORM_ON_PER_STAGE={deform}: deformable convolution has no "
            "Caffe2 operator; expected all False"
        )
    rpn = getattr(model, "proposal_generator", None)
    if isinstance(rpn, RPN) and any(float(w) != 1.0 for w in rpn.box2box_transform.weights):
        raise ExportAssertionError(
            f"Caffe2Tracer: model.proposal_generator.box2box_transform.weights="
            f"{tuple(rpn.box2box_transform.weights)}, expected all ones (Caffe2's GenerateProposals "
            "decodes with unit weights; MODEL.RPN.BBOX_REG_WEIGHTS)"
        )
    deform_convs = [(n, m) for n, m in model.named_modules() if isinstance(m, (DeformConv, ModulatedDeformConv))]
    if deform_convs:  # e.g. in a user backbone, whatever the config says
        name, module = deform_convs[0]
        raise ExportError(
            f"Caffe2Tracer: model.{name} is a {type(module).__name__} ({len(deform_convs)} deformable "
            "convolutions in the model): deformable convolution has no Caffe2 operator; expected none"
        )
    if not isinstance(inputs, (list, tuple)) or len(inputs) != 1:
        n = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
        raise ExportError(
            f"Caffe2Tracer: inputs has {n} images, expected a list with exactly one dict "
            "(batch inference is not supported by the Caffe2 export)"
        )
    if not isinstance(inputs[0], dict) or "image" not in inputs[0] or inputs[0]["image"].dim() != 3:
        raise ExportError('Caffe2Tracer: inputs[0] must be a dict with "image", a CHW tensor')


def _caffe2_cfg(cfg: CfgNode | DictConfig | None, model: nn.Module) -> CfgNode:
    """The yacs config the rewrite reads: ``cfg`` itself (with the export options), or derived from
    the model for a LazyConfig or None."""
    if isinstance(cfg, CfgNode):
        return cfg if "EXPORT_CAFFE2" in cfg else add_export_config(cfg.clone())
    if cfg is None or isinstance(cfg, DictConfig):
        return caffe2_cfg_from_model(model)
    raise ExportAssertionError(
        f"Caffe2Tracer: cfg is a {type(cfg).__name__}, expected a yacs CfgNode, a LazyConfig "
        "(omegaconf DictConfig from LazyConfig.load) or None"
    )


class Caffe2Tracer:
    """Make a detectron2 model traceable with Caffe2 operators and export it to Caffe2, ONNX or
    TorchScript.

    Args:
        cfg: the model's yacs config (``MODEL.META_ARCHITECTURE`` picks the rewrite), or its
            LazyConfig, or None: then the few keys the rewrite reads are derived from the model
            (:func:`~detectron2_export.export.lazy_cfg.caffe2_cfg_from_model`); everything else
            comes from the model's attributes in every case.
        model: a detectron2 model with weights loaded. It is deep-copied, never modified; the copy
            is put in eval mode, so a model in training mode exports as in eval mode (as upstream).
        inputs: sample inputs in detectron2's format (a list with one dict). They must produce
            detections: the trace depends on them.
    """

    def __init__(self, cfg: CfgNode | DictConfig | None, model: nn.Module, inputs: list[dict]) -> None:
        import copy

        if not isinstance(model, nn.Module):
            raise ExportAssertionError(f"Caffe2Tracer: model is a {type(model).__name__}, expected a torch.nn.Module")
        cfg = _caffe2_cfg(cfg, model)
        _check_exportable(cfg, model, inputs)

        c2_meta_arch = META_ARCH_CAFFE2_EXPORT_TYPE_MAP[cfg.MODEL.META_ARCHITECTURE]
        self.traceable_model = c2_meta_arch(cfg, copy.deepcopy(model).eval())
        self.inputs = inputs
        self.traceable_inputs = self.traceable_model.get_caffe2_inputs(inputs)

    def export_caffe2(self) -> "Caffe2Model":
        """Export through ONNX to a Caffe2 predict net + init net."""
        from .caffe2_export import export_caffe2_detection_model

        predict_net, init_net = export_caffe2_detection_model(self.traceable_model, self.traceable_inputs)
        return Caffe2Model(predict_net, init_net)

    def export_onnx(self):
        """The intermediate ONNX model, with Caffe2 custom ops (not runnable by other ONNX runtimes)."""
        from .onnx_export import export_onnx_model as export_onnx_model_impl

        return export_onnx_model_impl(self.traceable_model, self.traceable_inputs)

    def export_torchscript(self) -> torch.jit.ScriptModule:
        """``torch.jit.trace`` of the Caffe2-compatible model; it calls ``torch.ops._caffe2`` ops."""
        logger.info("Tracing the model with torch.jit.trace ...")
        with torch.no_grad():
            return torch.jit.trace(self.traceable_model, (self.traceable_inputs,))


_PREDICTOR_LOCK = threading.Lock()  # module-level: a lock in the instance would make it impossible to deepcopy


class Caffe2Model(nn.Module):
    """A Caffe2 predict net + init net, runnable with detectron2's inputs and outputs.

    ``__call__`` runs the nets in the project's runtime (validated at the first call, safe to call
    from many threads); ``precision="bf16"`` computes its convolutions and matrix products in
    bfloat16 where the CPU supports it (``caffe2/precision.py``).
    """

    def __init__(self, predict_net, init_net, *, precision: str = "fp32") -> None:
        super().__init__()
        self.eval()
        self._predict_net = predict_net
        self._init_net = init_net
        self.precision = precision
        self._predictor: nn.Module | None = None

    @property
    def predict_net(self):
        return self._predict_net

    @property
    def init_net(self):
        return self._init_net

    def save_protobuf(self, output_dir: str) -> None:
        """Write ``model.pb``, ``model.pbtxt`` and ``model_init.pb`` into ``output_dir``, atomically."""
        logger.info("Saving model to %s ...", output_dir)
        output_dir = os.path.abspath(os.path.expanduser(output_dir))
        with staged_directory(output_dir) as tmp:
            files = {
                "model.pb": self._predict_net.SerializeToString(),
                "model.pbtxt": str(self._predict_net).encode("utf-8"),
                "model_init.pb": self._init_net.SerializeToString(),
            }
            for name, data in files.items():
                with open(os.path.join(tmp, name), "wb") as f:
                    f.write(data)

    def save_graph(self, output_file: str, inputs: list[dict] | None = None) -> None:
        """Draw the predict net as SVG (format from the extension); with ``inputs``, blob shapes too."""
        from .graph_vis import run_and_save_graph, save_graph

        if inputs is None:
            save_graph(self._predict_net, output_file, op_only=False)
            return
        size_divisibility = get_pb_arg_vali(self._predict_net, "size_divisibility", 0)
        device = get_pb_arg_vals(self._predict_net, "device", b"cpu").decode("ascii")
        pad_value = get_pb_arg_floats(self._predict_net, "pad_value", None)
        tensor_inputs = convert_batched_inputs_to_c2_format(inputs, size_divisibility, device, pad_value)
        run_and_save_graph(self._predict_net, self._init_net, [x.cpu() for x in tensor_inputs], output_file)

    @staticmethod
    def load_protobuf(dir: str, *, precision: str = "fp32") -> "Caffe2Model":
        """Read ``dir/model.pb`` and ``dir/model_init.pb``."""
        from ..caffe2.serialization import load_net

        predict_net = load_net(os.path.join(dir, "model.pb"))
        init_net = load_net(os.path.join(dir, "model_init.pb"))
        return Caffe2Model(predict_net, init_net, precision=precision)

    def __call__(self, inputs: list[dict]) -> list[dict]:
        if self._predictor is None:
            with _PREDICTOR_LOCK:  # one load even when the first calls come from several threads
                if self._predictor is None:
                    from .caffe2_inference import ProtobufDetectionModel

                    self._predictor = ProtobufDetectionModel(
                        self._predict_net, self._init_net, precision=self.precision
                    )
        return self._predictor(inputs)


def export_caffe2_model(cfg: CfgNode | DictConfig | None, model: nn.Module, inputs: list[dict]) -> Caffe2Model:
    """Deprecated: use ``Caffe2Tracer(cfg, model, inputs).export_caffe2()``."""
    warnings.warn(
        "export_caffe2_model() is deprecated. Please use `Caffe2Tracer().export_caffe2() instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return Caffe2Tracer(cfg, model, inputs).export_caffe2()


def export_onnx_model(cfg: CfgNode | DictConfig | None, model: nn.Module, inputs: list[dict]):
    """Deprecated: use ``Caffe2Tracer(cfg, model, inputs).export_onnx()``."""
    warnings.warn(
        "export_onnx_model() is deprecated. Please use `Caffe2Tracer().export_onnx() instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return Caffe2Tracer(cfg, model, inputs).export_onnx()


