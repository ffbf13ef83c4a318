"""What a translation rule may know about the graph beyond its own node.

Constant values (initializers and ``Constant`` outputs), static shapes from ONNX shape inference,
fresh blob names for helper outputs, and new initializers a rule needs (e.g. a fixed kernel).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import UnsupportedOnnxNodeError
from .registry import ONNX_DOMAIN, domain_key

logger = logging.getLogger(__name__)

Shape = list  # list[int | None]: None for a dimension only known at run time


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """Attribute name -> Python value: str for strings, numpy arrays for tensors, lists for repeats."""
    attrs: dict[str, Any] = {}
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.TENSOR:
            attrs[attr.name] = numpy_helper.to_array(attr.t)
        elif attr.type == onnx.AttributeProto.STRING:
            attrs[attr.name] = attr.s.decode("utf-8")
        elif attr.type == onnx.AttributeProto.STRINGS:
            attrs[attr.name] = [s.decode("utf-8") for s in attr.strings]
        else:
            attrs[attr.name] = onnx.helper.get_attribute_value(attr)
    return attrs


_INFERENCE_VALUES_LIMIT = 4096
"""Initializers with more elements reach shape inference as typed graph inputs without values."""


def _for_shape_inference(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without the values of its large initializers.

    Shape inference only reads the values of small, shape-like constants (Reshape targets, Slice
    bounds...); the weights only matter by type and shape. Handing it every weight would serialise
    and parse the whole model several times: seconds and gigabytes for a 100M-float FC layer.
    """
    graph = model.graph
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    light.graph.name = graph.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(light.graph, field).extend(getattr(graph, field))
    inputs = {i.name for i in graph.input}
    for init in graph.initializer:
        if math.prod(init.dims) <= _INFERENCE_VALUES_LIMIT:
            light.graph.initializer.append(init)
        elif init.name not in inputs:
            light.graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, init.dims))
    return light


def _static_shapes(model: onnx.ModelProto) -> dict[str, Shape]:
    try:
        inferred = onnx.shape_inference.infer_shapes(_for_shape_inference(model), strict_mode=False)
    except Exception as e:  # custom ops or invalid shapes: fall back to what the exporter recorded
        logger.debug("ONNX shape inference failed (%s); using recorded value_info only", e)
        inferred = model
    graph = inferred.graph
    shapes: dict[str, Shape] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


class ConversionContext:
    """Shared state of one ONNX graph's conversion, handed to every translation rule."""

    def __init__(self, model: onnx.ModelProto):
        graph = model.graph
        self.opsets: dict[str, int] = {}
        for entry in model.opset_import:
            self.opsets[domain_key(entry.domain)] = entry.version
        self.opset: int = self.opsets.get(ONNX_DOMAIN, onnx.defs.onnx_opset_version())
        # decoded when first read: holding every weight as an array too would double the memory
        self._graph_initializers: dict[str, onnx.TensorProto] = {i.name: i for i in graph.initializer}
        self._constants: dict[str, np.ndarray] = {}
        self._shapes = _static_shapes(model)
        self._used_names: set[str] = set(self._graph_initializers)
        self._used_names.update(i.name for i in graph.input)
        for node in graph.node:
            self._used_names.update(node.input)
            self._used_names.update(node.output)
        self._dummy_count = 0
        self.new_initializers: dict[str, np.ndarray] = {}
        self.constant_outputs: set[str] = set()
        """Blobs filled by ``Constant`` nodes: their fill ops are dropped when nothing reads them."""

    def node_opset(self, node: onnx.NodeProto) -> int:
        return self.opsets.get(domain_key(node.domain), 1)

    def error(self, node: onnx.NodeProto, message: str) -> UnsupportedOnnxNodeError:
        """An error naming the node, for a rule that cannot translate this particular use of its op."""
        return UnsupportedOnnxNodeError(
            f"ONNX node {node.name!r}: op_type={node.op_type!r} (domain={node.domain!r}, "
            f"opset {self.node_opset(node)}): {message}"
        )

    def constant(self, name: str) -> np.ndarray | None:
        """The value of blob ``name`` if it is known at conversion time (initializer or Constant)."""
        if name not in self._constants and name in self._graph_initializers:
            self._constants[name] = numpy_helper.to_array(self._graph_initializers[name])
        return self._constants.get(name)

    def initializer_names(self) -> list[str]:
        """The graph's initializers, then those the rules added, in order."""
        return [*self._graph_initializers, *self.new_initializers]

    def initializer_value(self, name: str) -> np.ndarray:
        """The value of initializer ``name``, decoded afresh unless a rule read it already (not kept)."""
        if name in self._constants:
            return self._constants[name]
        return numpy_helper.to_array(self._graph_initializers[name])

    def set_constant(self, name: str, value: np.ndarray) -> None:
        self._constants[name] = np.asarray(value)

    @staticmethod
    def has_input(node: onnx.NodeProto, index: int) -> bool:
        """Whether optional input ``index`` is given (ONNX marks an omitted one with an empty name)."""
        return index < len(node.input) and node.input[index] != ""

    def static_input(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """The constant value of input ``index`` (``None`` if omitted); raises if it is computed at run time."""
        if not self.has_input(node, index):
            return None
        value = self.constant(node.input[index])
        if value is None:
            raise self.error(
                node, f"input {index} ({what}) {node.input[index]!r} is computed at run time, expected a constant"
            )
        return value

    def shape(self, name: str) -> Shape | None:
        """The static shape of blob ``name`` (dims may be ``None``), or ``None`` if its rank is unknown."""
        if name in self._constants:
            return list(self._constants[name].shape)
        return self._shapes.get(name)

    def rank(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else len(shape)

    def new_blob(self, hint: str = "OC2_DUMMY") -> str:
        """A blob name used nowhere else in the graph, for helper outputs of a rule."""
        while True:
            name = f"{hint}_{self._dummy_count}"
            self._dummy_count += 1
            if name not in self._used_names:
                self._used_names.add(name)
                return name

    def add_initializer(self, hint: str, value: np.ndarray) -> str:
        """Register a new parameter (it goes to the init net) and return its blob name."""
        name = self.new_blob(hint)
        self.new_initializers[name] = np.asarray(value)
        self._constants[name] = self.new_initializers[name]
        return name

    def canonical_axis(self, node: onnx.NodeProto, axis: int, rank_of: str, extra: int = 0) -> int:
        """``axis`` made non-negative against the rank of blob ``rank_of`` (plus ``extra`` new dims)."""
        if axis >= 0:
            return axis
        rank = self.rank(rank_of)
        if rank is None:
            raise self.error(node, f"negative axis {axis} needs the rank of {rank_of!r}, which is unknown")
        return axis + rank + extra
