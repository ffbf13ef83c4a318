import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import IllegalGraphTransformError
from detectron2_export.export.passes import group_norm_replace_aten_with_caffe2
from tests.export.passes.helpers import net, op


def _aten_group_norm(**extra):
    args = dict(operator="group_norm", num_groups=2, eps=1e-3, cudnn_enabled=1, **extra)
    return op("ATen", ["x", "gamma", "beta"], ["y"], **args)


def test_aten_group_norm_becomes_group_norm_and_runs_like_torch():
    predict = net([_aten_group_norm(), op("ATen", ["y"], ["z"], operator="relu")], ["x", "gamma", "beta"], ["z"])
    group_norm_replace_aten_with_caffe2(predict)
    gn, other = predict.op
    assert gn.type == "GroupNorm" and {a.name for a in gn.arg} == {"group", "epsilon"}
    assert next(a for a in gn.arg if a.name == "group").i == 2
    assert other.type == "ATen"  # only group_norm is replaced

    rng = np.random.default_rng(0)
    x, gamma, beta = rng.standard_normal((2, 4, 3, 3)), rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    x, gamma, beta = (a.astype(np.float32) for a in (x, gamma, beta))
    ws = Workspace("group_norm_replace")
    for name, value in (("x", x), ("gamma", gamma), ("beta", beta)):
        ws.FeedBlob(name, value)
    ws.RunOperatorOnce(gn)
    expected = F.group_norm(torch.from_numpy(x), 2, torch.from_numpy(gamma), torch.from_numpy(beta), eps=1e-3)
    np.testing.assert_allclose(ws.FetchBlob("y"), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_group_norm_without_num_groups_is_rejected():
    predict = net([op("ATen", ["x", "g", "b"], ["y"], operator="group_norm", eps=1e-5)], ["x", "g", "b"], ["y"])
    with pytest.raises(IllegalGraphTransformError, match="num_groups is missing"):
        group_norm_replace_aten_with_caffe2(predict)
