"""``ProtobufModel``: a predict/init NetDef pair as an ``nn.Module`` (SPEC 2.5, detectron2's
``caffe2_inference.ProtobufModel``)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ExportError, Detectron2ExportError, OperatorInputError
from .fusion import fold_parameter_copies, fuse_convolutions
from .layout import channels_last_filters
from .profiler import Profile
from .precision import cast_gemm_ops_to_bf16, check_precision
from .proto import caffe2_pb2
from .validate import validate_nets
from .workspace import Workspace, to_blob

logger = logging.getLogger(__name__)


class ProtobufModel(nn.Module):
    """Runs ``init_net`` once into a private workspace, then ``predict_net`` per call.

    Thread-safe: the workspace holds only the parameters, read-only after loading; each call runs
    in its own blob dict (a shallow copy of the parameter dict, so parameters are shared, never
    copied), which holds the inputs and the activations of that call, each dropped after its last
    reader so that the next ones reuse its memory (``Net.run(release_dead=True)``).

    Graph inputs are the predict net's external inputs that the init net did not produce, in
    external-input order (normally ``data``, ``im_info``); ``forward`` returns the external outputs
    in order; a failed run never returns another run's results.
    Convolution filters are stored channels-last (``layout.py``), dead intermediates are
    overwritten in place (``inplace.py``) and, with ``fuse`` (the default), Copy ops of parameters
    are run once at load time and Conv(+Add)(+Relu) chains run as one oneDNN convolution with a
    prepacked filter (``fusion.py``): outputs equal a plain
    run's up to float rounding. ``profile=True`` records time per op (``profile_table()``).
    ``precision="bf16"`` computes convolutions and matrix products in bfloat16 (``precision.py``).
    The nets are checked first (``validate.py``: op schemas, blobs defined before use, fill sizes
    bounded) unless ``validate=False`` says the caller already did.
    """

    _ids = itertools.count(0)

    def __init__(
        self, predict_net: caffe2_pb2.NetDef, init_net: caffe2_pb2.NetDef, *, precision: str = "fp32", profile: bool = False,
        fuse: bool = True, validate: bool = True,
    ):
        super().__init__()
        for name, net in (("predict_net", predict_net), ("init_net", init_net)):
            if not isinstance(net, caffe2_pb2.NetDef):
                raise TypeError(f"ProtobufModel: {name} is a {type(net).__name__}, expected a caffe2_pb2.NetDef")
        if validate:
            validate_nets(predict_net, init_net)
        compute_dtype = check_precision(precision)
        logger.info(f"Initializing ProtobufModel for: {predict_net.name} ...")
        self.ws_name = f"__tmp_ProtobufModel_{next(self._ids)}__"
        self.predict_net = predict_net
        self._ws = Workspace(self.ws_name)
        logger.info("Running init_net once to fill the parameters ...")
        self._ws.RunNetOnce(init_net)
        self._input_blobs = [b for b in predict_net.external_input if not self._ws.HasBlob(b)]
        for blob in self._input_blobs:
            self._ws.CreateBlob(blob)
        converted = channels_last_filters(predict_net, self._ws.blobs)
        logger.debug(f"{len(converted)} convolution filters stored channels-last")
        # Only the external outputs are fetched: dead intermediates may be overwritten in place.
        self._ws.CreateNet(predict_net, inplace=True)
        self._net = self._ws.net(predict_net.name)
        ops = self._net.ops
        protected = set(predict_net.external_output)
        if fuse:
            ops = fold_parameter_copies(ops, self._ws.blobs, protected)
        if compute_dtype == torch.bfloat16:
            ops = cast_gemm_ops_to_bf16(ops, self._ws.blobs)
        if fuse:
            ops = fuse_convolutions(ops, self._ws.blobs, protected)
        self._net.replace_ops(ops)
        self.precision = precision
        self._error_msgs: set[str] = set()
        self.profile: Profile | None = Profile() if profile else None
        """With ``profile=True``: every run's time per op (``profile_table()`` prints it)."""

    def profile_table(self, peak_gflops: float | None = None) -> str:
        """Time per op type, share and conv GFLOP/s vs the fp32 peak over the runs so far."""
        if self.profile is None:
            raise ExportError(f"ProtobufModel {self.predict_net.name!r}: created without profile=True, nothing was recorded")
        return self.profile.table(peak_gflops)

    def print_profile(self, peak_gflops: float | None = None) -> None:
        print(self.profile_table(peak_gflops))

    @property
    def input_names(self) -> list[str]:
        return list(self._input_blobs)

    @property
    def output_names(self) -> list[str]:
        return list(self.predict_net.external_output)

    def forward(self, inputs: Sequence[Any]) -> tuple[torch.Tensor, ...]:
        """Feed ``inputs`` (tensors or arrays, one per graph input), run, return the external outputs."""
        if len(inputs) != len(self._input_blobs):
            raise OperatorInputError(
                f"ProtobufModel {self.predict_net.name!r}: got {len(inputs)} inputs, expected {len(self._input_blobs)} "
                f"for the graph inputs {self._input_blobs} (external inputs the init net does not produce)"
            )
        blobs = dict(self._ws.blobs)  # this call's activations; parameters shared, never written
        for name, value in zip(self._input_blobs, inputs):
            blobs[name] = to_blob(value)
        error: Detectron2ExportError | None = None
        try:
            self._net.run(blobs, release_dead=True, profile=self.profile)
        except Detectron2ExportError as e:
            error = e
            if str(e) not in self._error_msgs:
                self._error_msgs.add(str(e))
                logger.warning(f"Encountered new {type(e).__name__}: \n{e}")
            logger.warning("Catch the error and use partial results.")
        outputs = [blobs[b] for b in self.predict_net.external_output]
        for name, out in zip(self.predict_net.external_output, outputs):
            if not isinstance(out, torch.Tensor):
                cause = f"; the net failed with: {error}" if error is not None else ""
                raise RuntimeError(f"Invalid output for blob {name}, received: {out!r}{cause}") from error
        return tuple(outputs)
