import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorInputError
from tests.caffe2.helpers import run_single_op


def test_caffe2_doc_example_2d():
    x = torch.tensor([[1.0, 5, 2, 3, 4, 6, 0], [4, 3, 3, 5, 2, 3, 1], [2, 2, 3, 6, 0, 0, 1], [0, 0, 1, 1, 2, 2, 3]])
    (y,) = run_single_op("BatchPermutation", [x, torch.tensor([2, 0, 1, 3], dtype=torch.int32)])
    torch.testing.assert_close(y, x[[2, 0, 1, 3]])
    assert y[0].tolist() == [2, 2, 3, 6, 0, 0, 1]


def test_higher_rank_and_empty():
    x = torch.arange(24.0).reshape(3, 2, 4)
    (y,) = run_single_op("BatchPermutation", [x, torch.tensor([1, 2, 0], dtype=torch.int32)])
    torch.testing.assert_close(y, torch.stack((x[1], x[2], x[0])))
    (empty,) = run_single_op("BatchPermutation", [torch.zeros(0, 256, 7, 7), torch.zeros(0, dtype=torch.int32)])
    assert empty.shape == (0, 256, 7, 7)


def test_length_mismatch():
    with pytest.raises(OperatorInputError, match=r"BatchPermutation: X shape=\(3, 2\), expected first dimension 2"):
        run_single_op("BatchPermutation", [torch.zeros(3, 2), torch.tensor([0, 1], dtype=torch.int32)])


def test_opcheck():
    torch.library.opcheck(
        torch.ops._caffe2.BatchPermutation.default, (torch.rand(4, 3), torch.tensor([3, 1, 0, 2], dtype=torch.int32))
    )
