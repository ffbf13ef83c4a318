"""Normalization layers and the ``get_norm`` factory (detectron2.layers.batch_norm)."""

import logging
from typing import Callable, Optional, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .wrappers import BatchNorm2d

__all__ = ["CycleBatchNormList", "FrozenBatchNorm2d", "LayerNorm", "NaiveSyncBatchNorm", "get_norm"]

logger = logging.getLogger(__name__)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d whose statistics and affine parameters are fixed buffers.

    All four tensors are buffers (not parameters), so the optimizer never sees them and the
    state dict keys are ``weight``, ``bias``, ``running_mean``, ``running_var`` (and
    ``num_batches_tracked`` for a frozen SyncBN, see :meth:`convert_frozen_batchnorm`). The default
    ``running_var`` is ``1 - eps`` so a fresh layer is exactly the identity.
    """

    _version = 3

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            # F.batch_norm's backward would also compute (unused) weight/bias gradients:
            # an explicit affine transform needs less memory.
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            bias = self.bias - self.running_mean * scale
            scale = scale.reshape(1, -1, 1, 1)
            bias = bias.reshape(1, -1, 1, 1)
            out_dtype = x.dtype  # may be half
            return x * scale.to(out_dtype) + bias.to(out_dtype)
        # Without gradients, F.batch_norm is one fused op (and exports as BatchNormalization).
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            # Checkpoints written before version 2 have no running statistics: fill in the
            # identity values so loading them does not report missing keys.
            if prefix + "running_mean" not in state_dict:
                state_dict[prefix + "running_mean"] = torch.zeros_like(self.running_mean)
            if prefix + "running_var" not in state_dict:
                state_dict[prefix + "running_var"] = torch.ones_like(self.running_var)
        counter = self._buffers.get("num_batches_tracked")
        if counter is not None and prefix + "num_batches_tracked" not in state_dict:
            # a training counter, unused at inference: checkpoints without it load silently
            state_dict[prefix + "num_batches_tracked"] = counter.clone()
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def __repr__(self) -> str:
        return "FrozenBatchNorm2d(num_features={}, eps={})".format(self.num_features, self.eps)

    @classmethod
    def convert_frozen_batchnorm(cls, module: nn.Module) -> nn.Module:
        """Replace every BatchNorm2d / SyncBatchNorm in ``module`` by a FrozenBatchNorm2d.

        A converted ``nn.SyncBatchNorm`` ("SyncBN") keeps its ``num_batches_tracked`` as a buffer:
        that is the state_dict detectron2 builds for SyncBN in frozen stages (weight and bias
        become buffers, ``num_batches_tracked`` stays; e.g. the stem and res2 of
        Misc/mask_rcnn_R_50_FPN_3x_syncbn, FREEZE_AT=2), so its checkpoints load key for key.

        Returns ``module`` itself (children replaced in place) or, when ``module`` is a batch norm,
        a new FrozenBatchNorm2d with its statistics.
        """
        bn_types = (nn.modules.batchnorm.BatchNorm2d, nn.modules.batchnorm.SyncBatchNorm)
        res = module
        if isinstance(module, bn_types):
            res = cls(module.num_features)
            if module.affine:
                res.weight.data = module.weight.data.clone().detach()
                res.bias.data = module.bias.data.clone().detach()
            res.running_mean.data = module.running_mean.data
            res.running_var.data = module.running_var.data
            res.eps = module.eps
            if isinstance(module, nn.modules.batchnorm.SyncBatchNorm) and module.num_batches_tracked is not None:
                res.register_buffer("num_batches_tracked", module.num_batches_tracked.data)
        else:
            for name, child in module.named_children():
                new_child = cls.convert_frozen_batchnorm(child)
                if new_child is not child:
                    res.add_module(name, new_child)
        return res

    @classmethod
    def convert_frozenbatchnorm2d_to_batchnorm2d(cls, module: nn.Module) -> nn.Module:
        """The inverse of :meth:`convert_frozen_batchnorm`: FrozenBatchNorm2d -> nn.BatchNorm2d."""
        res = module
        if isinstance(module, FrozenBatchNorm2d):
            res = torch.nn.BatchNorm2d(module.num_features, module.eps)
            res.weight.data = module.weight.data.clone().detach()
            res.bias.data = module.bias.data.clone().detach()
            res.running_mean.data = module.running_mean.data.clone().detach()
            res.running_var.data = module.running_var.data.clone().detach()
            res.eps = module.eps
            res.num_batches_tracked = torch.tensor(0, dtype=torch.long)
        else:
            for name, child in module.named_children():
                new_child = cls.convert_frozenbatchnorm2d_to_batchnorm2d(child)
                if new_child is not child:
                    res.add_module(name, new_child)
        return res


class NaiveSyncBatchNorm(BatchNorm2d):
    """detectron2's all-reduce SyncBN. At inference (and on one process) it is BatchNorm2d.

    Synchronised statistics only matter for multi-process training, which this package does not
    do: that case raises instead of silently computing per-process statistics.
    """

    def __init__(self, *args, stats_mode: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if stats_mode not in ("", "N"):
            raise ValueError(f"NaiveSyncBatchNorm: stats_mode={stats_mode!r}, expected '' or 'N'")
        self._stats_mode = stats_mode

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if self.training and distributed:
            raise NotImplementedError(
                "NaiveSyncBatchNorm: training with world_size>1, expected inference or a single process"
            )
        return super().forward(input)


class CycleBatchNormList(nn.ModuleList):
    """``length`` BatchNorms without affine, used in turn (call k uses norm k % length), then one
    shared affine: detectron2's "domain-specific" BN of dense heads shared across FPN levels
    (one set of statistics per level). State dict: ``<k>.running_mean`` ..., ``weight``, ``bias``.
    """

    def __init__(self, length: int, bn_class: Callable[..., nn.Module] = nn.BatchNorm2d, **kwargs):
        affine = kwargs.pop("affine", True)
        super().__init__([bn_class(**kwargs, affine=False) for _ in range(length)])
        self._affine = affine
        if affine:
            channels = self[0].num_features
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self._pos = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ret = self[self._pos](x)
        self._pos = (self._pos + 1) % len(self)
        if not self._affine:
            return ret
        return ret * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"affine={self._affine}"


class LayerNorm(nn.Module):
    """LayerNorm over the channel dimension of (N, C, H, W) inputs (ConvNeXt style)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.normalized_shape = (normalized_shape,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


_NORMS: dict[str, Callable[[int], nn.Module]] = {
    "BN": BatchNorm2d,
    "SyncBN": nn.SyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": lambda channels: nn.GroupNorm(32, channels),
    "nnSyncBN": nn.SyncBatchNorm,
    "naiveSyncBN": NaiveSyncBatchNorm,
    "naiveSyncBN_N": lambda channels: NaiveSyncBatchNorm(channels, stats_mode="N"),
    "LN": lambda channels: LayerNorm(channels),
}


def get_norm(norm: Union[str, Callable[[int], nn.Module], None], out_channels: int) -> Optional[nn.Module]:
    """Build a normalization layer.

    Args:
        norm: one of "BN", "SyncBN", "FrozenBN", "GN", "nnSyncBN", "naiveSyncBN", "naiveSyncBN_N",
            "LN"; or a callable taking the channel count and returning a module; "" or None for none.
        out_channels: number of channels the layer normalizes.
    """
    if norm is None:
        return None
    if isinstance(norm, str):
        if len(norm) == 0:
            return None
        if norm not in _NORMS:
            raise KeyError(f"get_norm: norm={norm!r}, expected one of {sorted(_NORMS)} or a callable")
        norm = _NORMS[norm]
    return norm(out_channels)
