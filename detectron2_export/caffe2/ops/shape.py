"""Shape and indexing ops (SPEC 5.15): Reshape, Flatten, Concat, Split, Transpose, Squeeze,
ExpandDims, Shape, Slice, Gather, BatchGather, ScatterAssign, Cast, NumpyTile, Expand."""

from __future__ import annotations

import math

import torch

from ...errors import OperatorArgumentError, OperatorInputError
from ..op_args import check_allocation, check_rank, check_tensor, int_list, normalize_axis
from ..registry import Arg, register_op
from ..tensor_proto import torch_dtype

_ORDER_AXIS = {"NCHW": 1, "NHWC": 3}


def _int_values(op_type: str, name: str, t: torch.Tensor) -> list[int]:
    """A 1-D integer tensor input (shape, starts, ...) -> list of ints."""
    check_rank(op_type, name, t, (1,))
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise OperatorInputError(f"{op_type}: {name} dtype={t.dtype}, expected an integer tensor")
    return t.tolist()


def _inferred_shape(op_type: str, in_shape: list[int], shape: list[int]) -> list[int]:
    """Caffe2's Reshape rule: 0 copies the input dim at that position, one -1 is inferred."""
    out = []
    for i, d in enumerate(shape):
        if d == 0:
            if i >= len(in_shape):
                raise OperatorArgumentError(f"{op_type}: shape={shape} has 0 at position {i}, expected a position < input rank {len(in_shape)}")
            d = in_shape[i]
        elif d < -1:
            raise OperatorArgumentError(f"{op_type}: shape={shape}, expected dims >= -1")
        out.append(d)
    if out.count(-1) > 1:
        raise OperatorArgumentError(f"{op_type}: shape={shape}, expected at most one -1")
    total = math.prod(in_shape)
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise OperatorInputError(f"{op_type}: cannot infer -1 in shape={shape} for input shape {in_shape}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise OperatorInputError(f"{op_type}: shape={out} has {math.prod(out)} elements, input shape {in_shape} has {total}")
    return out


@register_op("Reshape", n_inputs=(1, 2), n_outputs=(1, 2), args=(int_list("shape", None),))
def reshape(x: torch.Tensor, new_shape: torch.Tensor | None = None, *, shape: list[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Y = X reshaped to ``shape`` (argument or second input); old_shape = X's dims as int64."""
    check_tensor("Reshape", "data", x)
    if (new_shape is None) == (shape is None):
        raise OperatorArgumentError("Reshape: expected exactly one of the shape argument and the new_shape input")
    target = shape if new_shape is None else _int_values("Reshape", "new_shape", new_shape)
    old_shape = torch.tensor(x.shape, dtype=torch.int64)
    return x.reshape(_inferred_shape("Reshape", list(x.shape), target)), old_shape


@register_op("Flatten", args=(Arg("axis", int, 1),))
def flatten(x: torch.Tensor, *, axis: int) -> tuple[torch.Tensor]:
    """(prod(dims[:axis]), prod(dims[axis:]))."""
    check_tensor("Flatten", "X", x)
    a = normalize_axis("Flatten", axis, x.dim(), allow_end=True)
    return (x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:])),)


def _concat_axis(op_type: str, axis: int | None, order: str | None) -> int:
    if axis is not None and order is not None:
        raise OperatorArgumentError(f"{op_type}: both axis={axis} and order={order!r} given, expected one")
    if order is not None:
        return _ORDER_AXIS[order]
    return 1 if axis is None else axis


_ORDER = Arg("order", str, None, lambda v: v is None or v in _ORDER_AXIS, "'NCHW' or 'NHWC'")


@register_op("Concat", n_inputs=(1, -1), n_outputs=(1, 2), args=(Arg("axis", int, None), _ORDER, Arg("add_axis", bool, False)))
def concat(*xs: torch.Tensor, axis: int | None, order: str | None, add_axis: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs joined along ``axis`` (stacked on a new axis if ``add_axis``); split_info = int32 sizes."""
    for i, x in enumerate(xs):
        check_tensor("Concat", f"input {i}", x)
    a = _concat_axis("Concat", axis, order)
    a = normalize_axis("Concat", a, xs[0].dim(), allow_end=add_axis)
    if add_axis:
        return torch.stack(xs, a), torch.ones(len(xs), dtype=torch.int32)
    return torch.cat(xs, a), torch.tensor([x.shape[a] for x in xs], dtype=torch.int32)


@register_op("Split", n_inputs=(1, 2), n_outputs=(1, -1), args=(Arg("axis", int, None), _ORDER, int_list("split", None, min_value=0), Arg("add_axis", bool, False)))
def split(x: torch.Tensor, sizes: torch.Tensor | None = None, *, axis: int | None, order: str | None, split: list[int] | None, add_axis: bool) -> tuple[torch.Tensor, ...]:
    """X cut along ``axis`` into pieces of ``split`` sizes (argument or input).

    The sizes are required: Caffe2's equal split derives them from the number of outputs, which an
    op function does not see.
    """
    check_tensor("Split", "X", x)
    a = normalize_axis("Split", _concat_axis("Split", axis, order), x.dim())
    if sizes is not None and split is not None:
        raise OperatorArgumentError("Split: both the split argument and the split input given, expected one")
    parts = split if sizes is None else _int_values("Split", "split", sizes)
    if parts is None:
        raise OperatorArgumentError("Split: no split argument or input, expected the sizes of the pieces")
    if sum(parts) != x.shape[a]:
        raise OperatorInputError(f"Split: split={parts} sums to {sum(parts)}, expected X.shape[{a}]={x.shape[a]}")
    pieces = torch.split(x, parts, dim=a)
    return tuple(p.squeeze(a) for p in pieces) if add_axis else tuple(pieces)


@register_op("Transpose", args=(int_list("axes", None, min_value=0),))
def transpose(x: torch.Tensor, *, axes: list[int] | None) -> tuple[torch.Tensor]:
    """Dims permuted by ``axes`` (default: reversed)."""
    check_tensor("Transpose", "X", x)
    perm = list(reversed(range(x.dim()))) if axes is None else axes
    if sorted(perm) != list(range(x.dim())):
        raise OperatorArgumentError(f"Transpose: axes={axes}, expected a permutation of {list(range(x.dim()))}")
    return (x.permute(perm),)


@register_op("Squeeze", args=(int_list("dims", min_value=0),))
def squeeze(x: torch.Tensor, *, dims: list[int]) -> tuple[torch.Tensor]:
    """Removes the listed size-1 dims."""
    check_tensor("Squeeze", "X", x)
    drop = sorted(set(dims))
    for d in drop:
        if d >= x.dim() or x.shape[d] != 1:
            raise OperatorInputError(f"Squeeze: dims={dims}, X shape={tuple(x.shape)}: dim {d} is not of size 1")
    return (x.reshape([s for i, s in enumerate(x.shape) if i not in drop]),)


@register_op("ExpandDims", args=(int_list("dims", min_value=0),))
def expand_dims(x: torch.Tensor, *, dims: list[int]) -> tuple[torch.Tensor]:
    """Inserts size-1 dims at the listed output positions (in increasing order)."""
    check_tensor("ExpandDims", "X", x)
    shape = list(x.shape)
    for d in sorted(set(dims)):
        if d > len(shape):
            raise OperatorInputError(f"ExpandDims: dims={dims}, X shape={tuple(x.shape)}: cannot insert at {d}")
        shape.insert(d, 1)
    return (x.reshape(shape),)


@register_op("Shape", args=(int_list("axes", None),))
def shape_(x: torch.Tensor, *, axes: list[int] | None) -> tuple[torch.Tensor]:
    """X's dims as int64 (only those listed in ``axes`` if given)."""
    check_tensor("Shape", "X", x)
    dims = list(x.shape)
    if axes is not None:
        dims = [dims[normalize_axis("Shape", a, x.dim())] for a in axes]
    return (torch.tensor(dims, dtype=torch.int64),)


def _slice_bounds(op_type: str, x: torch.Tensor, starts: list[int], ends: list[int]) -> list[slice]:
    if len(starts) != len(ends) or len(starts) > x.dim():
        raise OperatorInputError(f"{op_type}: starts={starts}, ends={ends}, expected equal lengths <= X rank {x.dim()}")
    out = []
    for d, (s, e) in enumerate(zip(starts, ends)):
        size = x.shape[d]
        s = min(size + 1 + s if s < 0 else s, size)
        e = min(size + 1 + e if e < 0 else e, size)
        if s < 0 or e < s:
            raise OperatorInputError(f"{op_type}: dim {d} of size {size}: start={starts[d]}, end={ends[d]} give [{s}, {e}), expected 0 <= start <= end")
        out.append(slice(s, e))
    return out


@register_op("Slice", n_inputs=(1, 3), args=(int_list("starts", None), int_list("ends", None)))
def slice_(x: torch.Tensor, *bounds: torch.Tensor, starts: list[int] | None, ends: list[int] | None) -> tuple[torch.Tensor]:
    """X[starts:ends] per leading dim, step 1; a negative index i means dim + 1 + i (so -1 = the end)."""
    check_tensor("Slice", "X", x)
    if len(bounds) == 1:
        raise OperatorInputError("Slice: 2 inputs, expected 1 (starts/ends arguments) or 3 (starts and ends inputs)")
    if bounds:
        if starts is not None or ends is not None:
            raise OperatorArgumentError("Slice: starts/ends given both as inputs and as arguments, expected one")
        starts, ends = _int_values("Slice", "starts", bounds[0]), _int_values("Slice", "ends", bounds[1])
    if starts is None or ends is None:
        raise OperatorArgumentError("Slice: starts and ends missing, expected them as arguments or inputs")
    return (x[tuple(_slice_bounds("Slice", x, starts, ends))],)


def _check_indices(op_type: str, idx: torch.Tensor, size: int, wrap: bool) -> torch.Tensor:
    check_tensor(op_type, "indices", idx)
    if idx.dtype not in (torch.int32, torch.int64):
        raise OperatorInputError(f"{op_type}: indices dtype={idx.dtype}, expected int32 or int64")
    lo = -size if wrap else 0
    if idx.numel() and (int(idx.min()) < lo or int(idx.max()) >= size):
        raise OperatorInputError(f"{op_type}: indices in [{int(idx.min())}, {int(idx.max())}], expected in [{lo}, {size})")
    idx = idx.long()
    return torch.where(idx < 0, idx + size, idx) if wrap else idx


@register_op("Gather", n_inputs=(2, 2), args=(Arg("axis", int, 0), Arg("match_outer", bool, False, lambda v: not v, "0"), Arg("wrap_indices", bool, False)))
def gather(data: torch.Tensor, indices: torch.Tensor, *, axis: int, match_outer: bool, wrap_indices: bool) -> tuple[torch.Tensor]:
    """data indexed along ``axis``: shape dims[:axis] + indices.shape + dims[axis+1:]."""
    check_tensor("Gather", "data", data)
    a = normalize_axis("Gather", axis, data.dim())
    idx = _check_indices("Gather", indices, data.shape[a], wrap_indices)
    out = data.index_select(a, idx.reshape(-1))
    return (out.reshape((*data.shape[:a], *indices.shape, *data.shape[a + 1 :])),)


@register_op("BatchGather", n_inputs=(2, 2))
def batch_gather(data: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor]:
    """data (B, N, ...) indexed along axis 1: (B, *indices.shape, ...)."""
    check_rank("BatchGather", "data", data, tuple(range(2, 9)))
    idx = _check_indices("BatchGather", indices, data.shape[1], False)
    out = data.index_select(1, idx.reshape(-1))
    return (out.reshape(data.shape[0], *indices.shape, *data.shape[2:]),)


@register_op("ScatterAssign", n_inputs=(3, 3))
def scatter_assign(data: torch.Tensor, indices: torch.Tensor, slices: torch.Tensor) -> tuple[torch.Tensor]:
    """A copy of data with data[indices[i]] = slices[i]."""
    check_tensor("ScatterAssign", "data", data)
    idx = _check_indices("ScatterAssign", indices, data.shape[0] if data.dim() else 0, False)
    check_rank("ScatterAssign", "indices", idx, (1,))
    expected = (idx.shape[0], *data.shape[1:])
    if tuple(slices.shape) != expected or slices.dtype != data.dtype:
        raise OperatorInputError(f"ScatterAssign: slices shape={tuple(slices.shape)} dtype={slices.dtype}, expected {expected} {data.dtype}")
    out = data.clone()
    out[idx] = slices
    return (out,)


@register_op("Cast", args=(Arg("to", int),))
def cast(x: torch.Tensor, *, to: int) -> tuple[torch.Tensor]:
    """X converted to Caffe2 DataType ``to`` (floats to ints truncate toward zero, as C++)."""
    check_tensor("Cast", "X", x)
    return (x.to(torch_dtype(to, "Cast")),)


@register_op("NumpyTile", n_inputs=(2, 2))
def numpy_tile(x: torch.Tensor, repeats: torch.Tensor) -> tuple[torch.Tensor]:
    """numpy.tile(X, repeats) with one repeat count per dim of X."""
    check_tensor("NumpyTile", "X", x)
    reps = _int_values("NumpyTile", "repeats", repeats)
    if len(reps) != x.dim() or any(r < 0 for r in reps):
        raise OperatorInputError(f"NumpyTile: repeats={reps}, expected {x.dim()} non-negative counts (one per dim of X)")
    check_allocation("NumpyTile", "output", [d * r for d, r in zip(x.shape, reps)], x.dtype)
    return (x.repeat(reps),)


@register_op("Expand", n_inputs=(2, 2))
def expand(x: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor]:
    """X broadcast (numpy rules) with ``shape``; the output has the broadcast shape."""
    check_tensor("Expand", "X", x)
    target = _int_values("Expand", "shape", shape)
    return (x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(target))),)
