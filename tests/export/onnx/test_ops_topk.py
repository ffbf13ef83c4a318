"""``ops.topk``: TopK with k = min(k, axis length), in torch and as an exported ONNX node."""

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.ops import ALL, topk

from .helpers import OnnxFunction, dynamic, op_types


class TopK(nn.Module):
    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.k, self.dim = k, dim

    def forward(self, x):
        return topk(x, self.k, self.dim)


def _distinct(*shape: int, seed: int = 0) -> torch.Tensor:
    """A random permutation of 0..n-1 reshaped: no ties, so the indices are unique."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(int(np.prod(shape)), generator=g).to(torch.float32).reshape(shape)


def test_hand_case_k_above_the_axis_returns_the_whole_axis_sorted():
    x = torch.tensor([[3.0, -1.0, 7.0], [0.5, 2.0, -4.0]])
    values, indices = topk(x, 5, dim=1)
    assert values.tolist() == [[7.0, 3.0, -1.0], [2.0, 0.5, -4.0]]
    assert indices.tolist() == [[2, 0, 1], [1, 0, 2]]
    values, indices = topk(x, 1, dim=0)
    assert values.tolist() == [[3.0, 2.0, 7.0]] and indices.tolist() == [[0, 1, 0]]


@pytest.mark.parametrize("k", [1, 4, ALL])
def test_torch_equals_a_descending_sort_cut_at_k(k):
    x = _distinct(3, 6)
    values, indices = topk(x, k, dim=-1)
    order = torch.argsort(x, dim=1, descending=True)[:, : min(k, 6)]
    assert torch.equal(indices, order)
    assert torch.equal(values, torch.gather(x, 1, order))


@pytest.mark.parametrize("dim", [0, 1])
def test_onnx_k_is_clamped_to_the_axis_at_run_time(dim):
    fn = OnnxFunction(TopK(5, dim), [_distinct(8, 9)], ["x"], ["values", "indices"], dynamic(["x", "values", "indices"], [0, 1], [0, 1], [0, 1]))
    assert op_types(fn.model).count("TopK") == 1
    for shape in [(3, 2), (2, 3), (7, 11), (1, 1)]:  # the axis below, at and above k
        x = _distinct(*shape, seed=sum(shape))
        values, indices = fn(x)
        expected_values, expected_indices = topk(x, 5, dim)
        assert values.shape == tuple(expected_values.shape) and values.shape[dim] == min(5, shape[dim])
        np.testing.assert_array_equal(values, expected_values.numpy())
        np.testing.assert_array_equal(indices, expected_indices.numpy())


def test_onnx_all_sorts_the_whole_axis_of_any_length():
    fn = OnnxFunction(TopK(ALL, 1), [_distinct(2, 4)], ["x"], ["values", "indices"], dynamic(["x", "values", "indices"], [0, 1], [0, 1], [0, 1]))
    x = _distinct(3, 17, seed=3)
    values, indices = fn(x)
    np.testing.assert_array_equal(indices, torch.argsort(x, dim=1, descending=True).numpy())
    np.testing.assert_array_equal(values, torch.sort(x, dim=1, descending=True).values.numpy())


def test_onnx_empty_axis_gives_empty_outputs():
    fn = OnnxFunction(TopK(3, 1), [_distinct(2, 4)], ["x"], ["values", "indices"], dynamic(["x", "values", "indices"], [0, 1], [0, 1], [0, 1]))
    values, indices = fn(np.zeros((2, 0), dtype=np.float32))
    assert values.shape == (2, 0) and indices.shape == (2, 0)
