import numpy as np

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.export.passes import get_params_from_init_net
from tests.export.passes.helpers import net, op

CUDA = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)


def test_params_and_device_options_of_their_producers():
    w = op("GivenTensorFill", [], ["w"], values=[1.0, 2.0, 3.0, 4.0], shape=[2, 2])
    w.device_option.CopyFrom(CUDA)
    to_cpu = op("CopyGPUToCPU", ["w"], ["w_cpu"])
    to_cpu.device_option.CopyFrom(CUDA)
    init = net(
        [w, op("GivenTensorInt64Fill", [], ["idx"], values=[3, -1], shape=[2]), to_cpu],
        external_output=["w", "idx", "w_cpu"],
    )
    params, device_options = get_params_from_init_net(init)
    assert list(params) == ["w", "idx", "w_cpu"]
    np.testing.assert_array_equal(params["w"], np.array([[1, 2], [3, 4]], np.float32))
    assert params["w"].dtype == np.float32 and params["idx"].dtype == np.int64
    np.testing.assert_array_equal(params["idx"], [3, -1])
    assert device_options["w"] == CUDA
    assert device_options["idx"] == caffe2_pb2.DeviceOption()
    assert device_options["w_cpu"] == caffe2_pb2.DeviceOption()  # a CUDA op, but its output is on the CPU


def test_params_equal_fetched_blobs_and_share_no_memory():
    """Arrays are taken from the scratch workspace without FetchBlob's copy, but two blobs holding
    one tensor (``Alias``) still come back as independent arrays, as FetchBlob gives them."""
    fills = [
        op("GivenTensorFill", [], ["w"], values=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], shape=[2, 3]),
        op("Alias", ["w"], ["w_alias"]),
        op("GivenTensorIntFill", [], ["i"], values=[7, -8], shape=[2]),
        op("GivenTensorBoolFill", [], ["flags"], values=[1, 0], shape=[2]),
        op("GivenTensorFill", [], ["scalar"], values=[0.5], shape=[]),
    ]
    init = net(fills, external_output=["w", "w_alias", "i", "flags", "scalar"])
    params, _ = get_params_from_init_net(init)
    ws = Workspace("reference")
    ws.RunNetOnce(init)
    for name in init.external_output:
        expected = ws.FetchBlob(name)
        assert params[name].dtype == expected.dtype and params[name].shape == expected.shape, name
        np.testing.assert_array_equal(params[name], expected, err_msg=name)
    assert not np.shares_memory(params["w"], params["w_alias"])
    params["w"][0, 0] = 100.0
    assert params["w_alias"][0, 0] == 1.0
