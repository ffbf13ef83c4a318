"""Issue 4 acceptance: a hand-built NetDef saved, reloaded and run equals torch; files round-trip."""

import torch

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import load_net, net_to_text, parse_message, parse_text, save_net
from tests.caffe2.small_net import INPUT_SHAPE, build_nets, make_params, torch_reference


def test_saved_reloaded_net_matches_torch(tmp_path):
    params = make_params()
    predict, init = build_nets(params)
    save_net(predict, tmp_path / "model.pb")
    save_net(init, tmp_path / "model_init.pb")
    save_net(predict, tmp_path / "model.pbtxt")
    model = ProtobufModel(load_net(tmp_path / "model.pb"), load_net(tmp_path / "model_init.pb"))
    assert model.input_names == ["data"] and model.output_names == ["prob"]
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(1))
    (prob,) = model((x,))
    torch.testing.assert_close(prob, torch_reference(x, params), rtol=1e-5, atol=1e-5)
    (again,) = ProtobufModel(load_net(tmp_path / "model.pbtxt"), init)((x.numpy(),))  # text file, numpy input
    torch.testing.assert_close(again, prob, rtol=0, atol=0)


def test_round_trip_bytes_identical():
    predict, init = build_nets(make_params())
    for net in (predict, init):
        data = net.SerializeToString()
        back = parse_message(data)
        assert back == net
        assert back.SerializeToString() == data


def test_pbtxt_parses_back_equal():
    predict, _ = build_nets(make_params())
    text = net_to_text(predict)
    assert text == str(predict)  # what detectron2 writes into model.pbtxt
    assert 'type: "Conv"' in text and 'name: "kernels"' in text
    assert parse_text(text) == predict


def test_model_outputs_are_reset_between_runs():
    predict, init = build_nets(make_params())
    model = ProtobufModel(predict, init)
    model((torch.zeros(INPUT_SHAPE),))
    assert model._ws.fetch_tensor("prob") is None  # a failed next run cannot return this run's output
