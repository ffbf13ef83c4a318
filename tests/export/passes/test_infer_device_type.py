import pytest

from detectron2_export.export.passes import infer_device_type
from tests.export.passes.helpers import net, op


def _gpu_detector():
    # data (cpu) -> copy to gpu -> Conv(w) -> copy to cpu -> BoxWithNMSLimit -> out
    return net(
        [
            op("CopyCPUToGPU", ["data"], ["data_gpu"]),
            op("Conv", ["data_gpu", "w"], ["feat"]),
            op("CopyGPUToCPU", ["feat"], ["feat_cpu"]),
            op("BoxWithNMSLimit", ["feat_cpu", "boxes"], ["out"]),
        ],
        external_input=["data", "w", "boxes"],
        external_output=["out"],
    )


@pytest.mark.parametrize("style, gpu", [("caffe2", "gpu"), ("pytorch", "cuda")])
def test_forward_and_backward_propagation(style, gpu):
    devices = infer_device_type(_gpu_detector(), {("data", 0): "cpu"}, device_name_style=style)
    assert devices == {
        ("data", 0): "cpu",
        ("data_gpu", 1): gpu,
        ("w", 0): gpu,  # known only through the op that reads it
        ("feat", 1): gpu,
        ("feat_cpu", 1): "cpu",
        ("boxes", 0): "cpu",
        ("out", 1): "cpu",
    }


def test_known_output_propagates_backwards():
    devices = infer_device_type(_gpu_detector(), {("out", 1): "cpu"}, device_name_style="pytorch")
    assert devices[("data", 0)] == "cpu" and devices[("feat", 1)] == "cuda"


def test_conflicting_inputs_raise():
    n = net([op("Add", ["a", "b"], ["c"])], ["a", "b"], ["c"])
    with pytest.raises(RuntimeError, match="Conflicting devices for Add"):
        infer_device_type(n, {("a", 0): "cpu", ("b", 0): "gpu"})


def test_copy_from_the_wrong_device_raises():
    n = net([op("CopyCPUToGPU", ["a"], ["b"])], ["a"], ["b"])
    with pytest.raises(RuntimeError, match="CopyCPUToGPU"):
        infer_device_type(n, {("a", 0): "gpu"})


def test_unreachable_blob_is_not_implemented():
    n = net([op("Relu", ["a"], ["b"]), op("Relu", ["c"], ["d"])], ["a", "c"], ["b", "d"])
    with pytest.raises(NotImplementedError, match=r"\('c', 0\)"):
        infer_device_type(n, {("a", 0): "cpu"})
