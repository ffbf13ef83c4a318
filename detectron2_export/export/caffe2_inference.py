"""Run exported nets with detectron2's input/output format (SPEC 2.5, ``ProtobufDetectionModel``)."""

from __future__ import annotations

import logging
from typing import Callable

import torch

from ..caffe2.protobuf_model import ProtobufModel
from .caffe2_modeling import META_ARCH_CAFFE2_EXPORT_TYPE_MAP, convert_batched_inputs_to_c2_format
from .protobuf_utils import get_pb_arg_floats, get_pb_arg_vali, get_pb_arg_vals

logger = logging.getLogger(__name__)


class ProtobufDetectionModel(torch.nn.Module):
    """A ``ProtobufModel`` with detectron2-style pre- and post-processing around it."""

    def __init__(self, predict_net, init_net, *, convert_outputs: Callable | None = None) -> None:
        super().__init__()
        self.protobuf_model = ProtobufModel(predict_net, init_net)
        self.size_divisibility = get_pb_arg_vali(predict_net, "size_divisibility", 0)
        self.device = get_pb_arg_vals(predict_net, "device", b"cpu").decode("ascii")
        # absent in upstream files, which expect zero padding
        self.pad_value = get_pb_arg_floats(predict_net, "pad_value", None)
        self._output_names = list(predict_net.external_output)

        if convert_outputs is None:
            meta_arch = get_pb_arg_vals(predict_net, "meta_architecture", b"GeneralizedRCNN").decode("ascii")
            meta_arch_cls = META_ARCH_CAFFE2_EXPORT_TYPE_MAP[meta_arch]
            self._convert_outputs = meta_arch_cls.get_outputs_converter(predict_net, init_net)
        else:
            self._convert_outputs = convert_outputs

    def _convert_inputs(self, batched_inputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device if torch.cuda.is_available() or not self.device.startswith("cuda") else "cpu"
        return convert_batched_inputs_to_c2_format(batched_inputs, self.size_divisibility, device, self.pad_value)

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        c2_inputs = self._convert_inputs(batched_inputs)
        c2_results = self.protobuf_model(c2_inputs)
        c2_results = dict(zip(self._output_names, c2_results))
        return self._convert_outputs(batched_inputs, c2_inputs, c2_results)
