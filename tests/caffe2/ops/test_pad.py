import pytest
import torch

from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

X = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def test_pad_image_constant_t_l_b_r():
    (y,) = run_single_op("PadImage", [X], pads=[1, 0, 0, 2], value=-1.0)  # t=1, l=0, b=0, r=2
    assert y.tolist() == [[[[-1.0, -1.0, -1.0, -1.0], [1.0, 2.0, -1.0, -1.0], [3.0, 4.0, -1.0, -1.0]]]]
    (z,) = run_single_op("PadImage", [X], pad=1)
    assert z.shape == (1, 1, 4, 4) and z.sum().item() == 10.0


def test_pad_image_reflect_and_edge():
    (r,) = run_single_op("PadImage", [X], pads=[0, 1, 0, 1], mode="reflect")
    assert r.tolist() == [[[[2.0, 1.0, 2.0, 1.0], [4.0, 3.0, 4.0, 3.0]]]]
    (e,) = run_single_op("PadImage", [X], pad_t=1, pad_l=0, pad_b=0, pad_r=1, mode="edge")
    assert e.tolist() == [[[[1.0, 2.0, 2.0], [1.0, 2.0, 2.0], [3.0, 4.0, 4.0]]]]


def test_pad_image_errors():
    with pytest.raises(OperatorArgumentError, match=r"PadImage: mode='wrap', expected one of \['constant', 'edge', 'reflect'\]"):
        run_single_op("PadImage", [X], pad=1, mode="wrap")
    with pytest.raises(OperatorInputError, match=r"PadImage: pads \[2, 0, 0, 0\] with mode 'reflect'"):
        run_single_op("PadImage", [X], pads=[2, 0, 0, 0], mode="reflect")
    with pytest.raises(OperatorInputError, match=r"PadImage: X shape=\(2, 2\), expected 4-D"):
        run_single_op("PadImage", [X[0, 0]], pad=1)
