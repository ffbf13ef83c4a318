"""The ONNX operators the standard-ONNX export emits by hand, one per file.

Each is a ``torch.autograd.Function`` whose ``forward`` computes the operator's result in eager torch
(used while tracing, so the rest of the graph sees real values) and whose ``symbolic`` emits the one
standard ONNX node, with the attributes onnxruntime and TensorRT implement. Everything else in the
export is plain torch that the TorchScript exporter lowers to standard ops by itself.
"""

from .nms import non_max_suppression
from .roi_align import roi_align
from .topk import ALL, topk

__all__ = ["ALL", "non_max_suppression", "roi_align", "topk"]
