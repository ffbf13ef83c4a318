"""Fill ops (SPEC 5.13): the parameters of init nets and the constants of predict nets.

Every filler takes its output shape from ``shape`` or, with one input, from that input (its values
when ``input_as_shape=1``, else its dims), followed by ``extra_shape``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ...errors import OperatorArgumentError, OperatorInputError
from ..op_args import check_allocation, int_list, named_op, number_arg
from ..registry import Arg, register_op
from ..tensor_proto import DataType, torch_dtype

_SHAPE_ARGS = (
    int_list("shape", [], min_value=0),
    int_list("extra_shape", [], min_value=0),
    Arg("input_as_shape", bool, False),
)


def _output_shape(op_type: str, inputs: tuple, shape: list[int], extra_shape: list[int], input_as_shape: bool) -> list[int]:
    if not inputs:
        if input_as_shape or extra_shape:
            raise OperatorArgumentError(f"{op_type}: input_as_shape/extra_shape given, expected a shape input with them")
        return shape
    if shape:
        raise OperatorArgumentError(f"{op_type}: shape={shape} given with a shape input, expected only one of them")
    (x,) = inputs
    if not input_as_shape:
        return list(x.shape) + extra_shape
    if x.dim() != 1 or x.dtype.is_floating_point or x.dtype == torch.bool:
        raise OperatorInputError(f"{op_type}: shape input dtype={x.dtype} shape={tuple(x.shape)}, expected a 1-D integer tensor")
    dims = x.tolist()
    if any(d < 0 for d in dims):
        raise OperatorInputError(f"{op_type}: shape input={dims}, expected non-negative dims")
    return dims + extra_shape


def _check_count(op_type: str, values: list | np.ndarray, shape: list[int]) -> None:
    if len(values) != math.prod(shape):
        raise OperatorArgumentError(
            f"{op_type}: values has {len(values)} elements, expected {math.prod(shape)} (shape {shape})"
        )


def _numeric_values(op_type: str, values: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # Decoded straight to an array (Arg type np.ndarray): init nets hold millions of values.
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf" or arr.ndim != 1:
        raise OperatorArgumentError(f"{op_type}: values={values[:4]!r}..., expected a list of numbers")
    return torch.from_numpy(arr).to(dtype)


_GIVEN_DTYPES: dict[str, torch.dtype] = {"GivenTensorStringFill": torch.uint8}
"""Element type of each ``GivenTensor*Fill`` (strings counted as one byte each)."""


def _given_tensor_fill(op_type: str, dtype: torch.dtype):
    _GIVEN_DTYPES[op_type] = dtype

    @register_op(op_type, n_inputs=(0, 1), args=(Arg("values", np.ndarray), *_SHAPE_ARGS))
    def fill(*inputs: torch.Tensor, values: np.ndarray, shape: list[int], extra_shape: list[int], input_as_shape: bool) -> tuple:
        out_shape = _output_shape(op_type, inputs, shape, extra_shape, input_as_shape)
        _check_count(op_type, values, out_shape)
        return (_numeric_values(op_type, values, dtype).reshape(out_shape),)

    return named_op(fill, op_type, f"{op_type}: ``values`` (row-major) as a {dtype} tensor of the output shape.")


GivenTensorFill = _given_tensor_fill("GivenTensorFill", torch.float32)
GivenTensorDoubleFill = _given_tensor_fill("GivenTensorDoubleFill", torch.float64)
GivenTensorIntFill = _given_tensor_fill("GivenTensorIntFill", torch.int32)
GivenTensorInt64Fill = _given_tensor_fill("GivenTensorInt64Fill", torch.int64)
GivenTensorBoolFill = _given_tensor_fill("GivenTensorBoolFill", torch.bool)


def _as_bytes(v: str | bytes) -> bytes:
    return v.encode("utf-8") if isinstance(v, str) else v


@register_op(
    "GivenTensorStringFill",
    n_inputs=(0, 1),
    args=(Arg("values", list, valid=lambda v: all(isinstance(s, (str, bytes)) for s in v), expected="a list of strings"), *_SHAPE_ARGS),
)
def given_tensor_string_fill(
    *inputs: torch.Tensor, values: list, shape: list[int], extra_shape: list[int], input_as_shape: bool
) -> tuple[Any]:
    """A string tensor. One string (how detectron2 stores a uint8 parameter, shape [1]) becomes a 1-D
    uint8 tensor of its bytes; several become a numpy object array of bytes, as Caffe2 fetches them."""
    out_shape = _output_shape("GivenTensorStringFill", inputs, shape, extra_shape, input_as_shape)
    _check_count("GivenTensorStringFill", values, out_shape)
    if len(values) == 1:
        return (torch.frombuffer(bytearray(_as_bytes(values[0])), dtype=torch.uint8) if values[0] else torch.zeros(0, dtype=torch.uint8),)
    return (np.array([_as_bytes(v) for v in values], dtype=object).reshape(out_shape),)


_FILLABLE = {k for k in DataType.values() if k not in (DataType.Value("UNDEFINED"), DataType.Value("STRING"))}


@register_op(
    "ConstantFill",
    n_inputs=(0, 1),
    args=(
        number_arg("value", 0.0),
        Arg("dtype", object, None, lambda v: v is None or v in _FILLABLE, "a Caffe2 DataType number"),
        *_SHAPE_ARGS,
    ),
)
def constant_fill(
    *inputs: torch.Tensor, value: float | int, dtype: int | None, shape: list[int], extra_shape: list[int], input_as_shape: bool
) -> tuple[torch.Tensor]:
    """A tensor full of ``value``; without ``dtype``, an int ``value`` gives INT64 and a float FLOAT (as Caffe2)."""
    out_shape = _output_shape("ConstantFill", inputs, shape, extra_shape, input_as_shape)
    torch_type = _constant_dtype(value, dtype)
    check_allocation("ConstantFill", "output", out_shape, torch_type)
    return (torch.full(out_shape, value, dtype=torch_type),)


def _constant_dtype(value: float | int, dtype: int | None) -> torch.dtype:
    if dtype is None:
        dtype = DataType.Value("INT64") if isinstance(value, int) else DataType.Value("FLOAT")
    return torch_dtype(dtype, "ConstantFill")


def static_fill(op_type: str, n_inputs: int, kwargs: dict[str, Any]) -> tuple[list[int], torch.dtype] | None:
    """Shape and dtype a fill op without inputs claims from its bound arguments (None for other ops),
    so a loader can check sizes before anything is allocated."""
    if n_inputs or (op_type != "ConstantFill" and op_type not in _GIVEN_DTYPES):
        return None
    shape = _output_shape(op_type, (), kwargs["shape"], kwargs["extra_shape"], kwargs["input_as_shape"])
    if op_type == "ConstantFill":
        return shape, _constant_dtype(kwargs["value"], kwargs["dtype"])
    return shape, _GIVEN_DTYPES[op_type]
