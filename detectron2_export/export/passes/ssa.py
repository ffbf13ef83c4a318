"""Versioned blobs: the static-single-assignment view of a NetDef the passes reason with (SPEC 4.3).

Walking the ops in order, an op's inputs read the current version of each name (external inputs
and never-written names are version 0) and each output bumps its name's version, so an in-place
op produces a new version. ``external_input`` refers to the starting versions, ``external_output``
to the final ones. Renaming a versioned blob renames exactly the occurrences of that version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import MutableSequence

from ...caffe2.proto import caffe2_pb2
from ...errors import IllegalGraphTransformError

VersionedBlob = tuple[str, int]
OpSSA = tuple[list[VersionedBlob], list[VersionedBlob]]
"""(versioned inputs, versioned outputs) of one op."""


def get_ssa(net: caffe2_pb2.NetDef, blob_versions: dict[str, int] | None = None) -> tuple[list[OpSSA], dict[str, int]]:
    """Per-op versioned inputs/outputs and the final version of every name.

    ``blob_versions`` seeds the starting versions (e.g. the init net's final versions); it is not
    modified.
    """
    versions = dict(blob_versions or {})
    for name in net.external_input:
        versions.setdefault(name, 0)
    ssa: list[OpSSA] = []
    for op in net.op:
        inputs = [(name, versions.get(name, 0)) for name in op.input]
        for name in op.output:
            versions[name] = versions.get(name, 0) + 1
        outputs = [(name, versions[name]) for name in op.output]
        ssa.append((inputs, outputs))
    return ssa, versions


def get_producer_map(ssa: list[OpSSA]) -> dict[VersionedBlob, tuple[int, int]]:
    """Versioned blob -> (op index, output index) of the op writing it."""
    producers = {}
    for op_index, (_, outputs) in enumerate(ssa):
        for output_index, blob in enumerate(outputs):
            producers[blob] = (op_index, output_index)
    return producers


def get_consumer_map(ssa: list[OpSSA]) -> defaultdict[VersionedBlob, list[tuple[int, int]]]:
    """Versioned blob -> [(op index, input index)] of the ops reading it (empty list if none)."""
    consumers: defaultdict[VersionedBlob, list[tuple[int, int]]] = defaultdict(list)
    for op_index, (inputs, _) in enumerate(ssa):
        for input_index, blob in enumerate(inputs):
            consumers[blob].append((op_index, input_index))
    return consumers


def _rename_versioned_blob_in_proto(
    proto: caffe2_pb2.NetDef,
    old_name: str,
    new_name: str,
    version: int,
    ssa: list[OpSSA],
    start_versions: dict[str, int],
    end_versions: dict[str, int],
) -> None:
    """Rename every occurrence of ``(old_name, version)`` in the ops and external lists of ``proto``."""
    for op, (inputs, outputs) in zip(proto.op, ssa):
        for i, blob in enumerate(inputs):
            if blob == (old_name, version):
                op.input[i] = new_name
        for i, blob in enumerate(outputs):
            if blob == (old_name, version):
                op.output[i] = new_name
    if start_versions.get(old_name, 0) == version:
        _rename_in_list(proto.external_input, old_name, new_name)
    if end_versions.get(old_name, 0) == version:
        _rename_in_list(proto.external_output, old_name, new_name)


def _rename_in_list(names: MutableSequence[str], old_name: str, new_name: str) -> None:
    for i, name in enumerate(names):
        if name == old_name:
            names[i] = new_name


def rename_op_output(predict_net: caffe2_pb2.NetDef, op_id: int, output_id: int, new_name: str) -> None:
    """Rename output ``output_id`` of op ``op_id``: that version everywhere (its readers and
    ``external_output`` follow)."""
    ssa, versions = get_ssa(predict_net)
    old_name, version = ssa[op_id][1][output_id]
    _rename_versioned_blob_in_proto(predict_net, old_name, new_name, version, ssa, {}, versions)


def rename_op_input(
    predict_net: caffe2_pb2.NetDef,
    init_net: caffe2_pb2.NetDef,
    op_id: int,
    input_id: int,
    new_name: str,
    from_producer: bool = False,
) -> None:
    """Rename input ``input_id`` of op ``op_id`` in both nets.

    Allowed only if the op is the blob's sole reader (otherwise the other readers would see a name
    change too); a graph input in ``external_input`` is renamed with it. ``from_producer`` renames
    the producer's output instead, which needs the producer to be in the predict net.
    """
    init_ssa, init_versions = get_ssa(init_net)
    ssa, versions = get_ssa(predict_net, init_versions)
    old_name, version = ssa[op_id][0][input_id]

    if from_producer:
        producer = get_producer_map(ssa).get((old_name, version))
        if producer is None:
            raise NotImplementedError(
                f"rename_op_input: input {old_name!r} of op #{op_id} has no producer in the predict net "
                "(it probably comes from the init net), which is not supported"
            )
        rename_op_output(predict_net, producer[0], producer[1], new_name)
        return

    n_readers = sum((old_name, version) in inputs for inputs, _ in ssa)
    if n_readers > 1:
        raise IllegalGraphTransformError(
            f"rename_op_input: input {old_name!r} of operator #{op_id} ({predict_net.op[op_id].type}) is "
            "consumed by other ops, please use rename_op_output on the producer instead"
        )
    _rename_versioned_blob_in_proto(init_net, old_name, new_name, version, init_ssa, {}, init_versions)
    _rename_versioned_blob_in_proto(predict_net, old_name, new_name, version, ssa, init_versions, versions)


def get_sub_graph_external_input_output(
    predict_net: caffe2_pb2.NetDef, sub_graph_op_indices: list[int]
) -> tuple[list[VersionedBlob], list[VersionedBlob]]:
    """The versioned blobs a sub-graph reads from outside it, and those it writes that are read
    outside it (by other ops or as ``external_output``); both in order of first appearance."""
    ssa, versions = get_ssa(predict_net)
    inside = set(sub_graph_op_indices)
    produced = [blob for i in sub_graph_op_indices for blob in ssa[i][1]]
    consumed = [blob for i in sub_graph_op_indices for blob in ssa[i][0]]
    produced_set = set(produced)
    ext_inputs = list(dict.fromkeys(b for b in consumed if b not in produced_set))
    read_outside = {b for i, (inputs, _) in enumerate(ssa) if i not in inside for b in inputs}
    read_outside.update((name, versions[name]) for name in predict_net.external_output)
    ext_outputs = [b for b in produced if b in read_outside]
    return ext_inputs, ext_outputs
