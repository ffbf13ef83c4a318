import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError
from tests.caffe2.helpers import run_single_op


def test_values_pass_through():
    x = torch.rand(2, 3)
    (y,) = run_single_op("AliasWithName", [x], name="bbox_nms")
    torch.testing.assert_close(y, x)
    (z,) = run_single_op("AliasWithName", [x], name="data", is_backward=True)
    torch.testing.assert_close(z, x)


def test_name_is_required():
    with pytest.raises(OperatorArgumentError, match=r"AliasWithName: missing required argument 'name'"):
        run_single_op("AliasWithName", [torch.rand(2)])


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_traced_node_keeps_name_and_default():
    def f(x):
        return torch.ops._caffe2.AliasWithName(x * 2, "score_nms")

    graph = torch.jit.trace(f, torch.rand(3)).graph
    (node,) = [n for n in graph.nodes() if n.kind() == "_caffe2::AliasWithName"]
    constants = [i.node().output().toIValue() for i in list(node.inputs())[1:]]
    assert constants == ["score_nms", False]


def test_opcheck():
    torch.library.opcheck(torch.ops._caffe2.AliasWithName.default, (torch.rand(2, 2), "x", False))
