"""One validation pass over a loaded predict/init NetDef pair, before anything runs (issue 15).

Model files come from other people. ``validate_nets`` checks, for both nets, everything the executor
would only find op by op while running (after the init net has allocated its parameters): every
op's type, input/output counts and arguments (the registry's own specs, through ``bind_operator``),
blobs defined before use, the predict net's external outputs produced, no duplicated graph input,
and the size every fill op claims (against its values and against ``ResourceLimits``) before
anything is allocated. ``read_model_meta`` checks the predict net's metadata arguments that
``Caffe2Model`` reads (``meta_architecture``, ``size_divisibility``, ``device``, ``pad_value``, and
per meta-architecture the outputs and arguments its output converter needs). Files written by
upstream detectron2, which have no ``pad_value``, are accepted.

Each error is the project's (``detectron2_export.errors``) and names the net, the op (index, type,
inputs, outputs) or the argument, and what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import Detectron2ExportError, OperatorArgumentError, OperatorInputError, ProtobufError, UnknownOperatorError
from .executor import bind_operator, check_inputs_defined, describe_op, with_context
from .op_args import ResourceLimits, check_allocation, resource_limits
from .ops.fill import static_fill
from .proto import caffe2_pb2
from .registry import OpSpec, get_op

_DEVICE = re.compile(r"(cpu|cuda)(:[0-9]+)?")


def _set_fields(arg: caffe2_pb2.Argument) -> list[str]:
    """The value fields ``arg`` sets (no repeated field is copied)."""
    return [d.name for d, _ in arg.ListFields() if d.name != "name"]


def _array_length(op: caffe2_pb2.OperatorDef, spec: OpSpec) -> dict[str, int]:
    """Element count of each numeric-array argument (a fill's ``values``), read without decoding it."""
    lengths: dict[str, int] = {}
    if not spec.array_args:
        return lengths
    for arg in op.arg:
        if arg.name in spec.array_args:
            fields = _set_fields(arg)
            if fields in (["floats"], ["ints"]):
                lengths[arg.name] = len(getattr(arg, fields[0]))
    return lengths


def _light_copy(op: caffe2_pb2.OperatorDef, lengths: dict[str, int]) -> caffe2_pb2.OperatorDef:
    """``op`` with each numeric-array argument cut to one element: binding it checks names, types and
    ranges as the executor will, without decoding millions of parameter values twice."""
    light = caffe2_pb2.OperatorDef(type=op.type, name=op.name, input=op.input, output=op.output)
    for arg in op.arg:
        fields = _set_fields(arg) if arg.name in lengths else []
        if fields in (["floats"], ["ints"]):
            getattr(light.arg.add(name=arg.name), fields[0]).extend(getattr(arg, fields[0])[:1])
        else:  # small, or malformed (a second ``values``...): bound as stored, for the executor's error
            light.arg.append(arg)
    return light


def _bind(net: caffe2_pb2.NetDef, index: int, op: caffe2_pb2.OperatorDef) -> tuple[OpSpec, dict, dict[str, int]]:
    try:
        spec = get_op(op.type)
    except UnknownOperatorError:
        bind_operator(op, index, net.name)  # raises the executor's error, with the op's place
        raise
    lengths = _array_length(op, spec)
    bound = bind_operator(_light_copy(op, lengths) if lengths else op, index, net.name)
    return spec, bound.kwargs, lengths


def _check_fill(
    net: caffe2_pb2.NetDef, index: int, op: caffe2_pb2.OperatorDef, kwargs: dict, lengths: dict[str, int], limit: int
) -> None:
    """Check the size a fill op without inputs claims: its values' count, and ``limit`` bytes."""
    if not op.type.endswith("Fill"):
        return
    place = describe_op(net.name, index, op)
    try:
        claimed = static_fill(op.type, len(op.input), kwargs)
    except (OperatorArgumentError, OperatorInputError) as e:
        raise type(e)(f"{place}: {e}") from None
    if claimed is None:
        return
    shape, dtype = claimed
    count = math.prod(shape)
    values = kwargs.get("values")
    given = lengths["values"] if "values" in lengths else None if values is None else len(values)
    if given is not None and given != count:
        raise OperatorArgumentError(
            f"{place}: output {list(op.output)} shape={shape} needs {count} values, the file holds {given}"
        )
    try:
        check_allocation(op.type, f"output {list(op.output)}", shape, dtype, limit)
    except OperatorArgumentError as e:
        raise OperatorArgumentError(f"{place}: {e}") from None


def _check_net(net: caffe2_pb2.NetDef, what: str, existing: Iterable[str], limit: int) -> set[str]:
    """Check every op of ``net``; returns the blobs defined once it has run."""
    if len(set(net.external_input)) != len(net.external_input):
        dupes = sorted({b for b in net.external_input if list(net.external_input).count(b) > 1})
        raise ProtobufError(f"{what} {net.name!r}: external_input lists {dupes} more than once, expected each once")
    known = set(existing) | set(net.external_input)
    try:
        for index, op in enumerate(net.op):
            _, kwargs, lengths = _bind(net, index, op)
            _check_fill(net, index, op, kwargs, lengths, limit)
            check_inputs_defined(net.name, index, op, known)
    except Detectron2ExportError as e:
        raise with_context(e, what) from e
    return known


def _model_bytes(init_net: caffe2_pb2.NetDef) -> int:
    """Bytes of parameter values the init net holds, counted without decoding them (a proxy for
    the file size: ``ByteSize()`` of a large net costs as much as a parse)."""
    total = 0
    for op in init_net.op:
        for arg in op.arg:
            if arg.name == "values":
                total += 4 * (len(arg.floats) + len(arg.ints)) + sum(len(s) for s in arg.strings)
    return total


def validate_nets(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef,
    *,
    model_bytes: int | None = None,
    limits: ResourceLimits | None = None,
) -> tuple[str, ...]:
    """Check a predict/init pair as ``ProtobufModel`` will load it; returns the graph inputs (the
    predict net's external inputs that the init net does not produce, in order).

    ``model_bytes`` (default: the bytes of values the init net holds) scales the largest tensor a
    fill may claim (``ResourceLimits.load_limit``)."""
    for name, net in (("predict_net", predict_net), ("init_net", init_net)):
        if not isinstance(net, caffe2_pb2.NetDef):
            raise ProtobufError(f"validate_nets: {name} is a {type(net).__name__}, expected a caffe2_pb2.NetDef")
    limits = limits or resource_limits()
    limit = limits.load_limit(_model_bytes(init_net) if model_bytes is None else model_bytes)
    init = _check_net(init_net, "init net", (), limit)
    predict = _check_net(predict_net, "predict net", init, limit)
    missing = [b for b in predict_net.external_output if b not in predict]
    if missing:
        raise OperatorInputError(
            f"predict net {predict_net.name!r}: external outputs {missing} are produced by no op and are not inputs"
        )
    return tuple(b for b in predict_net.external_input if b not in init)


@dataclass(frozen=True)
class ModelMeta:
    """The predict net's metadata, checked: what ``Caffe2Model`` needs to feed and read the nets."""

    meta_architecture: str
    size_divisibility: int
    device: str
    pad_value: list[float] | None


@dataclass(frozen=True)
class _MetaArg:
    name: str
    field: str
    required: bool = False


_ARCH_REQUIREMENTS: dict[str, tuple[tuple[_MetaArg, ...], tuple[str, ...]]] = {
    "GeneralizedRCNN": ((), ("bbox_nms", "score_nms", "class_nms")),
    "PanopticFPN": (
        (_MetaArg("combine_on", "i", True), _MetaArg("combine_overlap_threshold", "f", True),
         _MetaArg("combine_stuff_area_limit", "i", True), _MetaArg("combine_instances_confidence_threshold", "f", True)),
        ("bbox_nms", "score_nms", "class_nms", "sem_seg"),
    ),
    "RetinaNet": (
        (_MetaArg("score_threshold", "f", True), _MetaArg("topk_candidates", "i", True),
         _MetaArg("nms_threshold", "f", True), _MetaArg("max_detections_per_image", "i", True),
         _MetaArg("bbox_reg_weights", "floats", True), _MetaArg("anchor_generator_spec", "s")),
        ("box_cls_0", "box_delta_0"),
    ),
}
"""Per meta-architecture: the predict-net arguments its output converter reads (name, field) and
the external outputs it needs. RetinaNet's anchor spec is checked when it is decoded (its absence
gets a message about upstream's pickled form)."""


def _net_arg(net: caffe2_pb2.NetDef, name: str, field: str, where: str, required: bool = False):
    """The value of NetDef argument ``name`` stored in ``field`` (None if absent and not required)."""
    args = [a for a in net.arg if a.name == name]
    if not args:
        if required:
            raise ProtobufError(f"{where}: argument {name!r} missing, expected one ({field} field)")
        return None
    if len(args) > 1:
        raise ProtobufError(f"{where}: argument {name!r} given {len(args)} times, expected once")
    fields = _set_fields(args[0])
    if fields not in ([field], [] if field in ("floats", "ints", "strings") else [field]):
        raise ProtobufError(f"{where}: argument {name!r} sets fields {fields}, expected the {field!r} field")
    value = getattr(args[0], field)
    if field == "s":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"{where}: argument {name!r}={value[:64]!r}, expected a UTF-8 string") from None
    return list(value) if field in ("floats", "ints", "strings") else value


def read_model_meta(
    predict_net: caffe2_pb2.NetDef,
    graph_inputs: Sequence[str] | None = None,
    *,
    meta_architectures: Iterable[str] = tuple(_ARCH_REQUIREMENTS),
    limits: ResourceLimits | None = None,
    check_outputs: bool = True,
) -> ModelMeta:
    """The metadata arguments ``Caffe2Model`` reads, each checked for presence, field type and range;
    with ``check_outputs``, also the external outputs the meta-architecture's output converter reads.

    ``graph_inputs`` (from ``validate_nets``), if given, must be ``data`` then ``im_info``:
    ``Caffe2Model`` feeds those two tensors, in that order."""
    where = f"predict net {predict_net.name!r}"
    limits = limits or resource_limits()
    arch = _net_arg(predict_net, "meta_architecture", "s", where)
    arch = "GeneralizedRCNN" if arch is None else arch
    known = sorted(meta_architectures)
    if arch not in known:
        raise ProtobufError(f"{where}: argument 'meta_architecture'={arch!r}, expected one of {known}")
    size_divisibility = _net_arg(predict_net, "size_divisibility", "i", where)
    size_divisibility = 0 if size_divisibility is None else size_divisibility
    if not 0 <= size_divisibility <= limits.max_size_divisibility:
        raise ProtobufError(
            f"{where}: argument 'size_divisibility'={size_divisibility}, expected in [0, {limits.max_size_divisibility}] "
            "(ResourceLimits.max_size_divisibility)"
        )
    device = _net_arg(predict_net, "device", "s", where)
    device = "cpu" if device is None else device
    if not _DEVICE.fullmatch(device):
        raise ProtobufError(f"{where}: argument 'device'={device!r}, expected 'cpu', 'cuda' or 'cuda:<index>'")
    pad_value = _net_arg(predict_net, "pad_value", "floats", where)
    if pad_value is not None and (len(pad_value) not in (1, 3) or not all(math.isfinite(v) for v in pad_value)):
        raise ProtobufError(
            f"{where}: argument 'pad_value'={pad_value}, expected 1 or 3 finite floats (the pixel mean per channel)"
        )
    arch_args, arch_outputs = _ARCH_REQUIREMENTS.get(arch, ((), ()))
    for meta_arg in arch_args:
        _net_arg(predict_net, meta_arg.name, meta_arg.field, where, meta_arg.required)
    missing = [b for b in arch_outputs if b not in predict_net.external_output] if check_outputs else []
    if missing:
        raise ProtobufError(
            f"{where}: external outputs {list(predict_net.external_output)} lack {missing}, which meta_architecture "
            f"{arch!r} needs"
        )
    if graph_inputs is not None and list(graph_inputs) != ["data", "im_info"]:
        raise ProtobufError(
            f"{where}: graph inputs (external inputs the init net does not produce) {list(graph_inputs)}, "
            "expected ['data', 'im_info'] in this order"
        )
    return ModelMeta(arch, size_divisibility, device, pad_value)


def validate_model(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef,
    *,
    meta_architectures: Iterable[str] = tuple(_ARCH_REQUIREMENTS),
    model_bytes: int | None = None,
    limits: ResourceLimits | None = None,
    check_outputs: bool = True,
) -> ModelMeta:
    """``validate_nets`` and ``read_model_meta``: everything ``Caffe2Model`` needs, checked at load."""
    graph_inputs = validate_nets(predict_net, init_net, model_bytes=model_bytes, limits=limits)
    return read_model_meta(
        predict_net, graph_inputs, meta_architectures=meta_architectures, limits=limits, check_outputs=check_outputs
    )
