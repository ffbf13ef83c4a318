"""Run exported nets with detectron2's input/output format (SPEC 2.5, ``ProtobufDetectionModel``)."""

from __future__ import annotations

import logging
from typing import Callable

import torch

from ..caffe2.protobuf_model import ProtobufModel
from ..caffe2.validate import validate_model
from ..errors import Detectron2ExportError
from .caffe2_modeling import META_ARCH_CAFFE2_EXPORT_TYPE_MAP, convert_batched_inputs_to_c2_format

logger = logging.getLogger(__name__)


class ProtobufDetectionModel(torch.nn.Module):
    """A ``ProtobufModel`` with detectron2-style pre- and post-processing around it.

    The nets are validated first (``caffe2/validate.py``): a malformed file gets the project's error
    naming the op or argument before anything is allocated or run."""

    def __init__(
        self, predict_net, init_net, *, convert_outputs: Callable | None = None, precision: str = "fp32"
    ) -> None:
        super().__init__()
        meta = validate_model(
            predict_net,
            init_net,
            meta_architectures=tuple(META_ARCH_CAFFE2_EXPORT_TYPE_MAP),
            check_outputs=convert_outputs is None,
        )
        self.protobuf_model = ProtobufModel(predict_net, init_net, precision=precision, validate=False)  # done above
        self.size_divisibility = meta.size_divisibility
        self.device = meta.device
        # absent in upstream files, which expect zero padding
        self.pad_value = meta.pad_value
        self._output_names = list(predict_net.external_output)

        if convert_outputs is None:
            meta_arch_cls = META_ARCH_CAFFE2_EXPORT_TYPE_MAP[meta.meta_architecture]
            self._convert_outputs = meta_arch_cls.get_outputs_converter(predict_net, init_net)
        else:
            self._convert_outputs = convert_outputs

    def _convert_inputs(self, batched_inputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.device if torch.cuda.is_available() or not self.device.startswith("cuda") else "cpu"
        return convert_batched_inputs_to_c2_format(batched_inputs, self.size_divisibility, device, self.pad_value)

    def _run(self, c2_inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The net's outputs; a failed run raises the op's project error (``ProtobufModel`` reports it
        as a RuntimeError about the missing output, caused by that error)."""
        try:
            return self.protobuf_model(c2_inputs)
        except RuntimeError as e:
            cause = e.__cause__
            if isinstance(cause, Detectron2ExportError) and not isinstance(e, Detectron2ExportError):
                raise type(cause)(str(e)) from cause
            raise

    def forward(self, batched_inputs: list[dict]) -> list[dict]:
        c2_inputs = self._convert_inputs(batched_inputs)
        c2_results = dict(zip(self._output_names, self._run(c2_inputs)))
        return self._convert_outputs(batched_inputs, c2_inputs, c2_results)
