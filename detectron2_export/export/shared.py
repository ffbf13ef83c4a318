"""detectron2's ``detectron2.export.shared`` names, kept importable: the helpers now live in
``caffe2_graph_ops`` (blob aliases, device copies) and ``onnx_interpolate`` (the interpolate
replacement used while exporting to ONNX)."""

from .caffe2_graph_ops import alias, to_device
from .onnx_interpolate import mock_torch_nn_functional_interpolate, onnx_compatible_interpolate

__all__ = ["alias", "to_device", "onnx_compatible_interpolate", "mock_torch_nn_functional_interpolate"]
