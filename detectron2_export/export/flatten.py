"""Flatten rich inputs/outputs (lists, dicts, Instances, Boxes...) to tuples of tensors for tracing,
with schemas that rebuild the original structure (SPEC 2.6, 2.7, 7.1)."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..config.instantiate import convert_target_to_string, locate
from ..errors import ExportAssertionError
from ..structures import Boxes, Instances, ROIMasks
from .torchscript_patch import patch_builtin_len


@dataclass
class Schema:
    """Rebuilds an object from a flat tuple of values; the inverse of ``flatten``."""

    @classmethod
    def flatten(cls, obj: Any) -> tuple[tuple, "Schema"]:
        raise NotImplementedError

    def __call__(self, values: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _concat(values: Any) -> tuple[tuple, list[int]]:
        ret: tuple = ()
        sizes = []
        for v in values:
            if not isinstance(v, tuple):
                raise ExportAssertionError(f"Flattened results must be a tuple, got a {type(v).__name__}")
            ret = ret + v
            sizes.append(len(v))
        return ret, sizes

    @staticmethod
    def _split(values: tuple, sizes: list[int]) -> list[tuple]:
        if len(sizes) and len(values) != sum(sizes):
            raise ExportAssertionError(f"Values has length {len(values)} but expect length {sum(sizes)}.")
        ret = []
        for k in range(len(sizes)):
            begin, end = sum(sizes[:k]), sum(sizes[: k + 1])
            ret.append(values[begin:end])
        return ret


@dataclass
class ListSchema(Schema):
    schemas: list[Schema]
    sizes: list[int]

    def __call__(self, values: Any) -> list:
        values = self._split(values, self.sizes)
        if len(values) != len(self.schemas):
            raise ValueError(f"Values has length {len(values)} but schemas has length {len(self.schemas)}!")
        return [m(v) for m, v in zip(self.schemas, values)]

    @classmethod
    def flatten(cls, obj: Any) -> tuple[tuple, "ListSchema"]:
        res = [flatten_to_tuple(k) for k in obj]
        values, sizes = cls._concat([k[0] for k in res])
        return values, cls([k[1] for k in res], sizes)


@dataclass
class TupleSchema(ListSchema):
    def __call__(self, values: Any) -> tuple:
        return tuple(super().__call__(values))


@dataclass
class IdentitySchema(Schema):
    def __call__(self, values: Any) -> Any:
        return values[0]

    @classmethod
    def flatten(cls, obj: Any) -> tuple[tuple, "IdentitySchema"]:
        return (obj,), cls()


@dataclass
class DictSchema(ListSchema):
    keys: list[str]

    def __call__(self, values: Any) -> dict:
        values = super().__call__(values)
        return dict(zip(self.keys, values))

    @classmethod
    def flatten(cls, obj: Any) -> tuple[tuple, "DictSchema"]:
        for k in obj.keys():
            if not isinstance(k, str):
                raise KeyError("Only support flattening dictionaries if keys are str.")
        keys = sorted(obj.keys())
        values = [obj[k] for k in keys]
        ret, schema = ListSchema.flatten(values)
        return ret, cls(schema.schemas, schema.sizes, keys)


@dataclass
class InstancesSchema(DictSchema):
    def __call__(self, values: Any) -> Instances:
        image_size, fields = values[-1], values[:-1]
        fields = super().__call__(fields)
        return Instances(image_size, **fields)

    @classmethod
    def flatten(cls, obj: Instances) -> tuple[tuple, "InstancesSchema"]:
        ret, schema = super().flatten(obj.get_fields())
        size = obj.image_size
        if not isinstance(size, torch.Tensor):
            size = torch.tensor(size)
        return ret + (size,), schema


@dataclass
class TensorWrapSchema(Schema):
    """For classes that are simple wrappers of one tensor, e.g. ``Boxes``, ``ROIMasks``."""

    class_name: str

    def __call__(self, values: Any) -> Any:
        return locate(self.class_name)(values[0])

    @classmethod
    def flatten(cls, obj: Any) -> tuple[tuple, "TensorWrapSchema"]:
        return (obj.tensor,), cls(convert_target_to_string(type(obj)))


def flatten_to_tuple(obj: Any) -> tuple[tuple, Schema]:
    """Flatten ``obj`` into a tuple of primitive objects and a schema that rebuilds it."""
    schemas = [
        ((str, bytes), IdentitySchema),
        (list, ListSchema),
        (tuple, TupleSchema),
        (collections.abc.Mapping, DictSchema),
        (Instances, InstancesSchema),
        ((Boxes, ROIMasks), TensorWrapSchema),
    ]
    for klass, schema in schemas:
        if isinstance(obj, klass):
            F = schema
            break
    else:
        F = IdentitySchema
    return F.flatten(obj)


class TracingAdapter(nn.Module):
    """Wraps a model with rich inputs/outputs so that ``torch.jit.trace`` sees tuples of tensors.

    Usage::

        adapter = TracingAdapter(model, inputs)
        traced = torch.jit.trace(adapter, adapter.flattened_inputs)
        outputs = adapter.outputs_schema(traced(*adapter.flattened_inputs))
    """

    flattened_inputs: tuple[torch.Tensor, ...] = None  # type: ignore[assignment]
    inputs_schema: Schema | None = None
    outputs_schema: Schema | None = None

    def __init__(
        self,
        model: nn.Module,
        inputs: Any,
        inference_func: Callable | None = None,
        allow_non_tensor: bool = False,
    ) -> None:
        """
        Args:
            model: an nn.Module (DataParallel / DistributedDataParallel are unwrapped).
            inputs: the inputs to trace with; a non-tuple is treated as one argument.
            inference_func: ``inference_func(model, *inputs)`` runs the model; default ``model(*inputs)``.
            allow_non_tensor: drop non-tensor inputs/outputs instead of raising; the traced model
                then works only with the exact traced inputs.
        """
        super().__init__()
        if isinstance(model, (nn.parallel.distributed.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        self.model = model
        if not isinstance(inputs, tuple):
            inputs = (inputs,)
        self.inputs = inputs
        self.allow_non_tensor = allow_non_tensor

        if inference_func is None:
            inference_func = lambda model, *inputs: model(*inputs)  # noqa: E731
        self.inference_func = inference_func

        self.flattened_inputs, self.inputs_schema = flatten_to_tuple(inputs)

        if all(isinstance(x, torch.Tensor) for x in self.flattened_inputs):
            return
        if self.allow_non_tensor:
            self.flattened_inputs = tuple(x for x in self.flattened_inputs if isinstance(x, torch.Tensor))
            self.inputs_schema = None
        else:
            for input in self.flattened_inputs:
                if not isinstance(input, torch.Tensor):
                    raise ValueError(
                        "Inputs for tracing must only contain tensors. "
                        f"Got a {type(input)} instead."
                    )

    def forward(self, *args: torch.Tensor) -> tuple:
        with torch.no_grad(), patch_builtin_len():
            if self.inputs_schema is not None:
                inputs_orig_format = self.inputs_schema(args)
            else:
                if len(args) != len(self.flattened_inputs) or any(
                    x is not y for x, y in zip(args, self.flattened_inputs)
                ):
                    raise ValueError(
                        "TracingAdapter does not contain valid inputs_schema."
                        " So it cannot generalize to other inputs and must be"
                        " traced with `.flattened_inputs`."
                    )
                inputs_orig_format = self.inputs

            outputs = self.inference_func(self.model, *inputs_orig_format)
            flattened_outputs, schema = flatten_to_tuple(outputs)

            flattened_output_tensors = tuple(x for x in flattened_outputs if isinstance(x, torch.Tensor))
            if len(flattened_output_tensors) < len(flattened_outputs):
                if self.allow_non_tensor:
                    flattened_outputs = flattened_output_tensors
                    self.outputs_schema = None
                else:
                    raise ValueError(
                        "Model cannot be traced because some model outputs "
                        "cannot flatten to tensors."
                    )
            else:
                if self.outputs_schema is None:
                    self.outputs_schema = schema
                elif self.outputs_schema != schema:
                    raise ExportAssertionError(
                        "Model should always return outputs with the same structure so it can be traced!"
                    )
            return flattened_outputs

    def _create_wrapper(self, traced_model: Callable) -> Callable:
        """A function with the original model's interface around ``traced_model``."""

        def forward(*args: Any) -> Any:
            flattened_inputs, _ = flatten_to_tuple(args)
            flattened_outputs = traced_model(*flattened_inputs)
            return self.outputs_schema(flattened_outputs)

        return forward


