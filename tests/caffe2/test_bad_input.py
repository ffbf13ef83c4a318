"""Bad files and nets give clear exceptions (type and message), never a crash or a hang."""

import logging

import numpy as np
import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import load_net, save_net
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import OperatorInputError, ProtobufError, UnknownOperatorError
from tests.caffe2.helpers import make_op
from tests.caffe2.small_net import INPUT_SHAPE, build_nets, make_params


@pytest.fixture
def nets():
    return build_nets(make_params())


def test_truncated_pb(tmp_path, nets):
    data = nets[0].SerializeToString()
    path = tmp_path / "model.pb"
    path.write_bytes(data[:-3])  # cuts into the last length-delimited field ("prob")
    with pytest.raises(ProtobufError, match=rf"{path}: not a valid binary caffe2.NetDef \({len(data) - 3} bytes\)"):
        load_net(path)


def test_random_bytes_pb(tmp_path):
    path = tmp_path / "random.pb"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes())
    with pytest.raises(ProtobufError, match=rf"{path}: not a valid binary caffe2.NetDef"):
        load_net(path)


def test_garbage_pbtxt(tmp_path):
    path = tmp_path / "model.pbtxt"
    path.write_text('op { type: "Relu" input: }')
    with pytest.raises(ProtobufError, match=rf"{path}: not a valid text caffe2.NetDef"):
        load_net(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ProtobufError, match=r"not UTF-8 text"):
        load_net(path)


def test_missing_required_field(tmp_path):
    bad = caffe2_pb2.NetDef(partition_info=[caffe2_pb2.PartitionInfo(device_id=[0])])  # name is required
    path = tmp_path / "partial.pb"
    path.write_bytes(bad.SerializePartialToString())
    with pytest.raises(ProtobufError, match=r"not a valid binary caffe2.NetDef .*required fields missing: \['partition_info\[0\].name'\]"):
        load_net(path)
    text_path = tmp_path / "partial.pbtxt"
    text_path.write_text("partition_info { device_id: 0 }")
    with pytest.raises(ProtobufError, match=r"not a valid text caffe2.NetDef: required fields missing"):
        load_net(text_path)


def test_init_net_missing_a_parameter(nets):
    predict, init = nets
    del init.op[2]  # fc_w
    model = ProtobufModel(predict, init)
    assert model.input_names == ["data", "fc_w"]
    with pytest.raises(OperatorInputError, match=r"got 1 inputs, expected 2 for the graph inputs \['data', 'fc_w'\]"):
        model((torch.zeros(INPUT_SHAPE),))
    predict.external_input.remove("fc_w")  # now nobody declares or produces it
    with pytest.raises(OperatorInputError, match=r"op #3 'FC' \(inputs \['pool1', 'fc_w', 'fc_b'\], outputs \['logits'\]\): input blob 'fc_w' does not exist"):
        ProtobufModel(predict, init)


def test_wrong_rank_input_for_conv(nets, caplog):
    ws = Workspace()
    ws.RunNetOnce(nets[1])
    ws.FeedBlob("data", torch.zeros(8, 8))
    with pytest.raises(OperatorInputError, match=r"op #0 'Conv' .*Conv: X shape=\(8, 8\), expected 3-D or 4-D or 5-D"):
        ws.RunNetOnce(nets[0])
    model = ProtobufModel(*nets)
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError, match=r"Invalid output for blob prob, received: None; the net failed with: .*Conv: X shape") as info:
        model((torch.zeros(8, 8),))
    assert isinstance(info.value.__cause__, OperatorInputError)
    assert "Encountered new OperatorInputError" in caplog.text


def test_wrong_rank_parameter_for_fc(nets):
    predict, init = nets
    init.op[3].arg[1].ints[:] = [5, 1]  # fc_b stored as (5, 1)
    model_ws = Workspace()
    model_ws.RunNetOnce(init)
    model_ws.FeedBlob("data", torch.zeros(INPUT_SHAPE))
    with pytest.raises(OperatorInputError, match=r"op #3 'FC' .*FC: b shape=\(5, 1\), expected 1-D"):
        model_ws.RunNetOnce(predict)


def test_unknown_op(nets):
    predict, init = nets
    predict.op.append(make_op("FancyNewOp", ["prob"], ["out"]))
    with pytest.raises(UnknownOperatorError, match=r"op #5 'FancyNewOp' .*not implemented by this runtime"):
        ProtobufModel(predict, init)


def test_not_a_netdef():
    with pytest.raises(TypeError, match=r"ProtobufModel: predict_net is a bytes, expected a caffe2_pb2.NetDef"):
        ProtobufModel(b"", caffe2_pb2.NetDef())


def test_save_is_atomic_and_leaves_no_temp(tmp_path, nets):
    save_net(nets[0], tmp_path / "model.pb")
    assert [p.name for p in tmp_path.iterdir()] == ["model.pb"]
