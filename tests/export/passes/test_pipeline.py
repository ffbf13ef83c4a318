import copy
import logging
from types import SimpleNamespace

import numpy as np
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.export.passes import PIPELINE, op_stats, run_passes
from tests.export.passes.helpers import io, net, op


def test_pipeline_order_is_upstreams():
    assert [(s.name, s.gpu_only) for s in PIPELINE] == [
        ("fuse_alias_placeholder", False),
        ("fuse_copy_between_cpu_and_gpu", True),
        ("remove_dead_end_ops", True),
        ("assign_device_option", True),
        ("get_params_from_init_net", False),
        ("remove_reshape_for_fc", False),
        ("construct_init_net_from_params", False),
        ("group_norm_replace_aten_with_caffe2", False),
    ]


def test_op_stats_sorted_by_count_then_name():
    n = net([op("Relu", [], []), op("Conv", [], []), op("Relu", [], []), op("Add", [], []), op("Conv", [], [])])
    assert op_stats(n) == "   2x Conv\n   2x Relu\n   1x Add"


def _converted_nets():
    predict = net(
        [
            op("AliasWithName", ["input.1"], ["t0"], name="data"),
            op("Mul", ["t0", "w"], ["t1"]),
            op("ATen", ["t1", "g", "b"], ["t2"], operator="group_norm", num_groups=1, eps=1e-5),
            op("AliasWithName", ["t2"], ["t3"], name="out"),
        ],
        external_input=["input.1", "w", "g", "b"],
        external_output=["t3"],
        name="main_graph_predict",
    )
    init = net(
        [
            op("GivenTensorFill", [], ["w"], values=[2.0], shape=[1]),
            op("GivenTensorFill", [], ["g"], values=[1.0, 1.0], shape=[2]),
            op("GivenTensorFill", [], ["b"], values=[0.0, 0.0], shape=[2]),
        ],
        external_output=["w", "g", "b"],
        name="main_graph_init",
    )
    return predict, init


def test_cpu_run_of_the_pipeline(caplog):
    predict, init = _converted_nets()
    original = predict.SerializeToString()
    with caplog.at_level(logging.INFO):
        new_predict, new_init = run_passes(predict, init, [torch.zeros(1, 2, 2, 2)])
    assert predict.SerializeToString() == original  # the inputs are left alone
    assert io(new_predict) == [("Mul", ["data", "w"], ["t1"]), ("GroupNorm", ["t1", "g", "b"], ["out"])]
    assert list(new_predict.external_input) == ["data", "w", "g", "b"] and list(new_predict.external_output) == ["out"]
    assert new_init.name == "" and list(new_init.external_output) == ["w", "g", "b"]
    assert "Operators used in predict_net: \n   1x GroupNorm\n   1x Mul" in caplog.text
    assert "Operators used in init_net: \n   3x GivenTensorFill" in caplog.text


def test_gpu_inputs_run_the_device_steps():
    predict, init = _converted_nets()
    predict.op.insert(1, op("CopyGPUToCPU", ["t0"], ["t0_cpu"]))
    predict.op.insert(2, op("CopyCPUToGPU", ["t0_cpu"], ["t0_gpu"]))
    predict.op[3].input[0] = "t0_gpu"
    on_gpu = SimpleNamespace(device=torch.device("cuda:0"))  # only the device is read
    new_predict, new_init = run_passes(predict, init, [on_gpu])
    assert [o.type for o in new_predict.op] == ["Mul", "GroupNorm"]
    cuda = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)
    assert all(o.device_option == cuda for o in new_predict.op)
    assert all(o.device_option == cuda for o in new_init.op)
    np.testing.assert_array_equal(new_init.op[0].arg[0].floats, [2.0])


def test_inplace_run_gives_the_same_nets_without_copying_the_init_net(monkeypatch):
    expected = [n.SerializeToString() for n in run_passes(*_converted_nets(), [torch.zeros(1, 2, 2, 2)])]
    predict, init = _converted_nets()
    deepcopy = copy.deepcopy

    def no_init_net_copy(x, memo=None):
        assert x is not init, "the init net (it holds the weights) was deep-copied"
        return deepcopy(x, memo)

    monkeypatch.setattr(copy, "deepcopy", no_init_net_copy)
    got = run_passes(predict, init, [torch.zeros(1, 2, 2, 2)], inplace=True)
    assert [n.SerializeToString() for n in got] == expected
    assert predict.op[0].type == "Mul"  # the given predict net was worked on
