"""A small hand-built Caffe2 classifier (Conv -> Relu -> MaxPool -> FC -> Softmax) and its torch twin."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.proto import caffe2_pb2
from tests.caffe2.helpers import make_op

INPUT_SHAPE = (2, 3, 8, 8)


def make_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv1_w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv1_b": rng.standard_normal(4).astype(np.float32),
        "fc_w": (rng.standard_normal((5, 64)) * 0.1).astype(np.float32),
        "fc_b": rng.standard_normal(5).astype(np.float32),
    }


def build_nets(params: dict[str, np.ndarray]) -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    """(predict_net, init_net) laid out like detectron2's exports: params filled by GivenTensorFill."""
    init = caffe2_pb2.NetDef(
        op=[make_op("GivenTensorFill", [], [k], values=v, shape=v.shape) for k, v in params.items()],
        external_output=list(params),
    )
    predict = caffe2_pb2.NetDef(
        name="small_classifier_predict",
        op=[
            make_op("Conv", ["data", "conv1_w", "conv1_b"], ["conv1"], kernels=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
            make_op("Relu", ["conv1"], ["conv1"]),
            make_op("MaxPool", ["conv1"], ["pool1"], kernels=[2, 2], strides=[2, 2]),
            make_op("FC", ["pool1", "fc_w", "fc_b"], ["logits"]),
            make_op("Softmax", ["logits"], ["prob"], axis=1),
        ],
        external_input=["data", *params],
        external_output=["prob"],
    )
    return predict, init


def torch_reference(x: torch.Tensor, params: dict[str, np.ndarray]) -> torch.Tensor:
    p = {k: torch.from_numpy(v) for k, v in params.items()}
    y = F.max_pool2d(F.relu(F.conv2d(x, p["conv1_w"], p["conv1_b"], padding=1)), 2, 2)
    return torch.softmax(F.linear(y.flatten(1), p["fc_w"], p["fc_b"]), dim=1)
