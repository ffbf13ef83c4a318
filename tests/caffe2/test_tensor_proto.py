import numpy as np
import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.tensor_proto import caffe2_data_type, proto_to_tensor, tensor_to_proto, torch_dtype
from detectron2_export.errors import OperatorArgumentError, ProtobufError

TP = caffe2_pb2.TensorProto


@pytest.mark.parametrize(
    "dtype, field",
    [
        (torch.float32, "float_data"),
        (torch.float64, "double_data"),
        (torch.int64, "int64_data"),
        (torch.int32, "int32_data"),
        (torch.int16, "int32_data"),
        (torch.int8, "int32_data"),
        (torch.uint8, "int32_data"),
        (torch.bool, "int32_data"),
        (torch.float16, "int32_data"),
    ],
)
def test_round_trip_per_dtype(dtype, field):
    t = torch.tensor([[0, 1, 1], [0, 1, 0]]).to(dtype) if dtype == torch.bool else torch.tensor([[1, -2, 3], [4, 5, -6]]).to(dtype)
    if dtype == torch.uint8:
        t = t.abs()
    proto = tensor_to_proto(t, "w")
    assert proto.name == "w" and list(proto.dims) == [2, 3] and len(getattr(proto, field)) == 6
    back = proto_to_tensor(proto)
    assert back.dtype == dtype
    torch.testing.assert_close(back, t)


def test_float16_stored_as_bit_pattern():
    proto = tensor_to_proto(torch.tensor([1.0, -2.0], dtype=torch.float16))
    assert list(proto.int32_data) == [0x3C00, 0xC000]  # IEEE half bits of 1.0 and -2.0


def test_hand_written_protos():
    assert proto_to_tensor(TP(dims=[3], data_type=TP.BYTE, byte_data=b"\x01\x02\xff")).tolist() == [1, 2, 255]
    assert proto_to_tensor(TP(dims=[], data_type=TP.INT64, int64_data=[9])).shape == ()
    strings = proto_to_tensor(TP(dims=[2], data_type=TP.STRING, string_data=[b"a", b"bc"]))
    assert isinstance(strings, np.ndarray) and strings.tolist() == [b"a", b"bc"]
    bf16 = TP(dims=[2], data_type=TP.FLOAT, data_format=TP.FMT_BFLOAT16, raw_data=b"\x80\x3f\x00\xc0")
    assert proto_to_tensor(bf16).tolist() == [1.0, -2.0]  # bfloat16 0x3f80 = 1.0, 0xc000 = -2.0


def test_bad_protos():
    with pytest.raises(ProtobufError, match=r"TensorProto 'w': 2 FLOAT values, expected 6 \(dims \[2, 3\]\)"):
        proto_to_tensor(TP(name="w", dims=[2, 3], float_data=[1, 2]))
    with pytest.raises(ProtobufError, match=r"dims=\[-1\], expected non-negative"):
        proto_to_tensor(TP(dims=[-1]))
    with pytest.raises(ProtobufError, match=r"data_type=14 \(ZERO_COLLISION_HASH\)"):
        proto_to_tensor(TP(dims=[1], data_type=14))


def test_dtype_numbers():
    assert torch_dtype(1) == torch.float32 and torch_dtype(10) == torch.int64 and torch_dtype(13) == torch.float64
    assert caffe2_data_type(torch.int32) == 2
    with pytest.raises(OperatorArgumentError, match=r"Cast: data type=4 \(STRING\)"):
        torch_dtype(4)
