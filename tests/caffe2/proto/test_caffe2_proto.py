"""caffe2.proto: the wire contract (field numbers, enums) and the generated module's freshness."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2

from detectron2_export.caffe2.proto import caffe2_pb2

PROTO_DIR = os.path.dirname(caffe2_pb2.__file__)


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    caffe2_pb2.DESCRIPTOR.CopyToProto(proto)
    return proto


def _fields(message) -> dict[str, tuple[int, int]]:
    """{field name: (number, label)} of a generated message class, nested ones included."""
    path = message.DESCRIPTOR.full_name.split(".")[1:]
    candidates = _file_proto().message_type
    for name in path:
        (found,) = [m for m in candidates if m.name == name]
        candidates = found.nested_type
    return {f.name: (f.number, f.label) for f in found.field}


REQUIRED = descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED


def _strip_json_names(messages) -> None:
    for m in messages:
        for f in m.field:
            f.ClearField("json_name")
        _strip_json_names(m.nested_type)


def test_package_and_syntax():
    assert caffe2_pb2.DESCRIPTOR.package == "caffe2"
    assert _file_proto().syntax in ("", "proto2")  # protoc leaves proto2's syntax field empty


def test_tensor_proto_fields_and_data_types():
    f = _fields(caffe2_pb2.TensorProto)
    expected = {
        "dims": 1, "data_type": 2, "float_data": 3, "int32_data": 4, "byte_data": 5, "string_data": 6,
        "name": 7, "device_detail": 8, "double_data": 9, "int64_data": 10, "segment": 11, "raw_data": 13,
        "data_format": 15,
    }  # fmt: skip
    assert {k: v[0] for k, v in f.items()} == expected
    d = caffe2_pb2.TensorProto.DESCRIPTOR
    for packed in ("float_data", "int32_data", "double_data", "int64_data"):
        assert d.fields_by_name[packed].is_packed, packed
    assert caffe2_pb2.TensorProto().data_type == caffe2_pb2.TensorProto.FLOAT
    assert dict(caffe2_pb2.TensorProto.DataType.items()) == {
        "UNDEFINED": 0, "FLOAT": 1, "INT32": 2, "BYTE": 3, "STRING": 4, "BOOL": 5, "UINT8": 6, "INT8": 7,
        "UINT16": 8, "INT16": 9, "INT64": 10, "FLOAT16": 12, "DOUBLE": 13, "ZERO_COLLISION_HASH": 14,
        "REBATCHING_BUFFER": 15,
    }  # fmt: skip
    assert {k: v[0] for k, v in _fields(caffe2_pb2.TensorProto.Segment).items()} == {"begin": 1, "end": 2}
    assert all(v[1] == REQUIRED for v in _fields(caffe2_pb2.TensorProto.Segment).values())


def test_argument_fields():
    assert {k: v[0] for k, v in _fields(caffe2_pb2.Argument).items()} == {
        "name": 1, "f": 2, "i": 3, "s": 4, "floats": 5, "ints": 6, "strings": 7, "n": 8, "nets": 9, "t": 10,
        "tensors": 11, "qtensors": 12,
    }  # fmt: skip


def test_operator_and_net_fields():
    assert {k: v[0] for k, v in _fields(caffe2_pb2.OperatorDef).items()} == {
        "input": 1, "output": 2, "name": 3, "type": 4, "arg": 5, "device_option": 6, "engine": 7,
        "control_input": 8, "is_gradient_op": 9, "debug_info": 10, "domain": 11, "op_version": 12,
    }  # fmt: skip
    assert {k: v[0] for k, v in _fields(caffe2_pb2.NetDef).items()} == {
        "name": 1, "op": 2, "type": 3, "num_workers": 4, "device_option": 5, "arg": 6, "external_input": 7,
        "external_output": 8, "partition_info": 9,
    }  # fmt: skip
    assert {k: v[0] for k, v in _fields(caffe2_pb2.DeviceOption).items()} == {
        "device_type": 1, "device_id": 2, "random_seed": 3, "node_name": 4, "numa_node_id": 5, "extra_info": 6,
    }  # fmt: skip


def test_qtensor_and_device_type_enum():
    q = _fields(caffe2_pb2.QTensorProto)
    assert {k: v[0] for k, v in q.items()} == {
        "dims": 1, "precision": 2, "scale": 3, "bias": 4, "is_signed": 5, "data": 6, "name": 7, "data_type": 8,
        "scales": 9, "biases": 10, "axis": 11, "is_multiparam": 12,
    }  # fmt: skip
    assert [k for k, v in q.items() if v[1] == REQUIRED] == ["precision", "scale", "bias", "is_signed"]
    assert caffe2_pb2.QTensorProto().data_type == caffe2_pb2.TensorProto.INT32
    assert caffe2_pb2.DeviceTypeProto.Value("PROTO_CUDA") == 1
    assert caffe2_pb2.DeviceTypeProto.Value("PROTO_COMPILE_TIME_MAX_DEVICE_TYPES") == 11


def test_known_wire_bytes():
    """Hand-encoded bytes: OperatorDef{input:"x" (field 1, wire type 2), type:"Relu" (field 4)}."""
    op = caffe2_pb2.OperatorDef(input=["x"], type="Relu")
    assert op.SerializeToString() == b"\x0a\x01x" + b"\x22\x04Relu"
    arg = caffe2_pb2.Argument(name="k", ints=[7, 7])  # repeated int64, unpacked in proto2: tag 0x30 each
    assert arg.SerializeToString() == b"\x0a\x01k" + b"\x30\x07\x30\x07"


def _protoc() -> list[str] | None:
    """A protoc command: grpcio-tools' bundled one, or the system's (a descriptor set does not
    depend on the protoc version, unlike generated Python code)."""
    if importlib.util.find_spec("grpc_tools") is not None:
        return [sys.executable, "-m", "grpc_tools.protoc"]
    return [shutil.which("protoc")] if shutil.which("protoc") else None


@pytest.mark.skipif(_protoc() is None, reason="no protoc (pip install grpcio-tools, or apt install protobuf-compiler)")
def test_generated_module_matches_proto(tmp_path):
    subprocess.run([*_protoc(), f"-I{PROTO_DIR}", f"--descriptor_set_out={tmp_path / 'set.pb'}", "caffe2.proto"], check=True)
    fresh = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "set.pb").read_bytes()).file[0]
    _strip_json_names(fresh.message_type)  # descriptor sets carry json names, generated modules do not
    committed = _file_proto()
    assert fresh == committed, "caffe2_pb2.py is stale: run detectron2_export/caffe2/proto/generate.sh"
