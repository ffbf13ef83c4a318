"""Shared by the lowering tests: export a tiny module with the TorchScript exporter (opset 17,
dynamic axes), check that the graph is standard ONNX, and run it with onnxruntime on CPU."""

from __future__ import annotations

import io
import warnings
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from detectron2_export.structures import ImageList

OPSET = 17
CONTROL_FLOW = {"Loop", "If", "Scan"}


def assert_standard(model: onnx.ModelProto) -> None:
    """Every node is a default-domain operator and none is control flow (Loop, If, Scan)."""
    nodes = list(model.graph.node)
    assert nodes, "the exported graph has no nodes"
    other_domains = sorted({f"{n.domain}::{n.op_type}" for n in nodes if n.domain not in ("", "ai.onnx")})
    assert not other_domains, f"nodes outside the default domain: {other_domains}"
    control = sorted({n.op_type for n in nodes if n.op_type in CONTROL_FLOW})
    assert not control, f"control-flow nodes: {control}"


def op_types(model: onnx.ModelProto) -> List[str]:
    """The op type of every node of the main graph, in order."""
    return [n.op_type for n in model.graph.node]


class OnnxFunction:
    """A module exported once (traced on ``args``) and callable on numpy or torch inputs of other
    shapes through an onnxruntime CPU session; returns numpy arrays."""

    def __init__(
        self,
        module: nn.Module,
        args: Sequence[torch.Tensor],
        input_names: List[str],
        output_names: List[str],
        dynamic_axes: Dict[str, Dict[int, str]],
    ) -> None:
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.eval(),
                tuple(args),
                buffer,
                dynamo=False,
                opset_version=OPSET,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
            )
        self.model = onnx.load_from_string(buffer.getvalue())
        assert_standard(self.model)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.input_names = input_names

    def __call__(self, *inputs) -> List[np.ndarray]:
        feeds = {
            name: x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            for name, x in zip(self.input_names, inputs)
        }
        return self.session.run(None, feeds)


def dynamic(names: Sequence[str], *axes: Sequence[int]) -> Dict[str, Dict[int, str]]:
    """``dynamic_axes`` making the given axes of each name dynamic (axis names are unique)."""
    return {name: {a: f"{name}_{a}" for a in name_axes} for name, name_axes in zip(names, axes)}


class Function(nn.Module):
    """A function of tensors as a module, the form ``torch.onnx.export`` traces."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def level_features(n: int, channels: int, height: int, width: int, strides: Sequence[int], seed: int) -> List[torch.Tensor]:
    """Random (N, C, ceil(H / s), ceil(W / s)) feature maps, one per stride."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, channels, -(-height // s), -(-width // s), generator=g) for s in strides]


def image_list(image_sizes: Sequence[Sequence[int]]) -> ImageList:
    """An ImageList with these image sizes, for heads that read only ``image_sizes``."""
    return ImageList(torch.zeros(len(image_sizes), 3, 1, 1), [tuple(s) for s in image_sizes])


def assert_instances_reproduced(name: str, e, o, found_min: float = 0.99, mask_iou_min: float = 0.99,
                                keypoint_tol: float = 0.01) -> None:
    """Exported instances ``o`` reproduce eager ``e``: >= ``found_min`` of each found in the other
    (same class, IoU >= 0.98, score within 0.01), matched masks (not mostly empty) of mean IoU >=
    ``mask_iou_min``, keypoints within ``keypoint_tol`` pixels."""
    from ..test_caffe2_export_models import match_detections

    assert len(e) >= 5, f"{name}: the init gives too few eager detections ({len(e)}) for a meaningful test"
    found, matched = match_detections(e, o)
    found_back, _ = match_detections(o, e)
    assert len(found) >= found_min * len(e), f"{name}: {len(found)}/{len(e)} eager detections found"
    assert len(found_back) >= found_min * len(o), f"{name}: {len(found_back)}/{len(o)} found back"
    if e.has("pred_masks"):
        me, mo = e.pred_masks[found], o.pred_masks[matched]
        assert me.dtype == mo.dtype == torch.bool and me.shape[1:] == mo.shape[1:] == e.image_size
        assert float(me.flatten(1).any(1).float().mean()) >= 0.5, f"{name}: most eager masks are empty"
        union = (me | mo).flatten(1).sum(1).float()
        iou = torch.where(union > 0, (me & mo).flatten(1).sum(1).float() / union.clamp(min=1), torch.ones_like(union))
        assert float(iou.mean()) >= mask_iou_min, f"{name}: mean mask IoU {float(iou.mean()):.4f}"
    if e.has("pred_keypoints"):
        torch.testing.assert_close(o.pred_keypoints[matched], e.pred_keypoints[found], atol=keypoint_tol, rtol=0)
