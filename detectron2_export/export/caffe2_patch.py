"""Swap detectron2 components for their Caffe2-compatible versions (SPEC 3.4).

Two mechanisms: class swapping of sub-modules (RPN -> Caffe2RPN, ROIPooler -> Caffe2ROIPooler),
and replacing the inference functions of the ROI heads while they run in tensor mode.
"""

from __future__ import annotations

import contextlib
from typing import Iterator
from unittest import mock

import torch

from ..errors import ExportAssertionError
from ..modeling import poolers
from ..modeling.proposal_generator import rpn
from ..modeling.roi_heads import keypoint_head, mask_head
from ..modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers
from ..modeling.roi_heads.cascade_rcnn import CascadeROIHeads
from .c10 import (
    Caffe2CascadeROIHeads,
    Caffe2Compatible,
    Caffe2FastRCNNOutputsInference,
    Caffe2KeypointRCNNInference,
    Caffe2MaskRCNNInference,
    Caffe2ROIPooler,
    Caffe2RPN,
)


class Caffe2CompatibleConverter:
    """Turns a module into its Caffe2-compatible class (``replaceCls``) in place."""

    def __init__(self, replaceCls: type) -> None:
        self.replaceCls = replaceCls

    def create_from(self, module: torch.nn.Module) -> torch.nn.Module:
        module.__class__ = self.replaceCls
        if isinstance(module, Caffe2Compatible):
            module.tensor_mode = False
        return module


def patch(model: torch.nn.Module, target: type, updater: Caffe2CompatibleConverter) -> torch.nn.Module:
    """Post-order walk: every sub-module that is a ``target`` is converted by ``updater``."""
    for name, module in model.named_children():
        model._modules[name] = patch(module, target, updater)
    if isinstance(model, target):
        return updater.create_from(model)
    return model


def patch_generalized_rcnn(model: torch.nn.Module) -> torch.nn.Module:
    ccc = Caffe2CompatibleConverter
    model = patch(model, rpn.RPN, ccc(Caffe2RPN))
    model = patch(model, poolers.ROIPooler, ccc(Caffe2ROIPooler))
    model = patch(model, CascadeROIHeads, ccc(Caffe2CascadeROIHeads))
    return model


def _require_called(mocked_func: mock.Mock, what: str) -> None:
    """The rewrite only takes effect if the model calls the patched function; say so if it never did."""
    if mocked_func.call_count == 0:
        raise ExportAssertionError(
            f"{what} was patched for the Caffe2 export but the model never called it: "
            "its ROI heads do not run detectron2's inference path"
        )


@contextlib.contextmanager
def mock_fastrcnn_outputs_inference(
    tensor_mode: bool, check: bool = True, box_predictor_type: type = FastRCNNOutputLayers
) -> Iterator[None]:
    with mock.patch.object(
        box_predictor_type,
        "inference",
        autospec=True,
        side_effect=Caffe2FastRCNNOutputsInference(tensor_mode),
    ) as mocked_func:
        yield
    if check:
        _require_called(mocked_func, f"{box_predictor_type.__name__}.inference")


@contextlib.contextmanager
def mock_mask_rcnn_inference(patched_module: str, check: bool = True) -> Iterator[None]:
    with mock.patch(f"{patched_module}.mask_rcnn_inference", side_effect=Caffe2MaskRCNNInference()) as mocked_func:
        yield
    if check:
        _require_called(mocked_func, "mask_rcnn_inference")


@contextlib.contextmanager
def mock_keypoint_rcnn_inference(
    patched_module: str, use_heatmap_max_keypoint: bool, check: bool = True
) -> Iterator[None]:
    with mock.patch(
        f"{patched_module}.keypoint_rcnn_inference",
        side_effect=Caffe2KeypointRCNNInference(use_heatmap_max_keypoint),
    ) as mocked_func:
        yield
    if check:
        _require_called(mocked_func, "keypoint_rcnn_inference")


class ROIHeadsPatcher:
    """Replaces the ROI heads' inference functions while ``mock_roi_heads()`` is active."""

    def __init__(self, heads: torch.nn.Module, use_heatmap_max_keypoint: bool) -> None:
        self.heads = heads
        self.use_heatmap_max_keypoint = use_heatmap_max_keypoint

    @contextlib.contextmanager
    def mock_roi_heads(self, tensor_mode: bool = True) -> Iterator[None]:
        kpt_heads_mod = keypoint_head.BaseKeypointRCNNHead.__module__
        mask_head_mod = mask_head.BaseMaskRCNNHead.__module__

        mock_ctx_managers = []
        if not isinstance(self.heads, CascadeROIHeads):  # the cascade rewrite has its own box path
            mock_ctx_managers.append(
                mock_fastrcnn_outputs_inference(
                    tensor_mode=tensor_mode,
                    check=True,
                    box_predictor_type=type(self.heads.box_predictor),
                )
            )
        if getattr(self.heads, "keypoint_on", False):
            mock_ctx_managers += [
                mock_keypoint_rcnn_inference(kpt_heads_mod, self.use_heatmap_max_keypoint)
            ]
        if getattr(self.heads, "mask_on", False):
            mock_ctx_managers += [mock_mask_rcnn_inference(mask_head_mod)]

        with contextlib.ExitStack() as stack:
            for mgr in mock_ctx_managers:
                stack.enter_context(mgr)
            yield
