import pytest
import torch

from tests.caffe2.helpers import run_single_op


@pytest.mark.parametrize("op_type", ["Copy", "Alias", "StopGradient", "EnsureCPUOutput", "CopyGPUToCPU", "CopyFromCPUInput"])
def test_identity_on_cpu(op_type):
    x = torch.tensor([[1.0, -2.0]])
    (y,) = run_single_op(op_type, [x])
    assert torch.equal(y, x) and y.device.type == "cpu"


def test_copy_cpu_to_gpu_moves_only_when_a_gpu_exists():
    (y,) = run_single_op("CopyCPUToGPU", [torch.tensor([3.0])])
    assert y.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert y.cpu().tolist() == [3.0]
