from types import SimpleNamespace

import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.errors import ExportError
from detectron2_export.export.passes import assign_device_option
from tests.export.passes.helpers import net, op


def _on(device: str):
    """Stands for an input tensor on ``device`` (only its ``.device`` is read), so no GPU is needed."""
    return SimpleNamespace(device=torch.device(device))


def _nets():
    predict = net(
        [
            op("Conv", ["data", "w"], ["feat"]),
            op("CopyGPUToCPU", ["feat"], ["feat_cpu"]),
            op("BoxWithNMSLimit", ["feat_cpu", "im_info"], ["boxes"]),
            op("CopyCPUToGPU", ["boxes"], ["boxes_gpu"]),
            op("Relu", ["boxes_gpu"], ["out"]),
        ],
        external_input=["data", "im_info", "w"],
        external_output=["out"],
    )
    init = net([op("GivenTensorFill", [], ["w"], values=[1.0], shape=[1, 1, 1, 1])], external_output=["w"])
    return predict, init


def _is_cuda(o: caffe2_pb2.OperatorDef) -> bool:
    return o.HasField("device_option") and o.device_option.device_type == caffe2_pb2.PROTO_CUDA


def test_gpu_ops_and_copies_get_cuda_cpu_ops_none():
    predict, init = _nets()
    assign_device_option(predict, init, [_on("cuda:0"), _on("cpu")])
    assert [_is_cuda(o) for o in predict.op] == [True, True, False, True, True]
    assert all(o.device_option.device_id == 0 for o in predict.op if _is_cuda(o))
    assert not predict.op[2].HasField("device_option")
    assert _is_cuda(init.op[0])  # the weight feeds a GPU op


def test_inputs_must_be_on_device_zero():
    predict, init = _nets()
    with pytest.raises(ExportError, match="cuda:1"):
        assign_device_option(predict, init, [_on("cuda:1"), _on("cpu")])
