"""ONNX -> Caffe2 NetDef conversion: a registry of per-op translation rules and the graph driver."""

from .converter import format_net_table, onnx_graph_to_caffe2_net
from .registry import converts, supported_ops

__all__ = ["converts", "format_net_table", "onnx_graph_to_caffe2_net", "supported_ops"]
