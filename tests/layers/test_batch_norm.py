"""FrozenBatchNorm2d, NaiveSyncBatchNorm, LayerNorm and get_norm."""

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.layers import FrozenBatchNorm2d, LayerNorm, NaiveSyncBatchNorm, get_norm


def _frozen():
    bn = FrozenBatchNorm2d(2)
    bn.weight.copy_(torch.tensor([2.0, 0.5]))
    bn.bias.copy_(torch.tensor([1.0, -1.0]))
    bn.running_mean.copy_(torch.tensor([3.0, -2.0]))
    bn.running_var.copy_(torch.tensor([4.0, 0.25]) - bn.eps)  # var + eps = 4, 0.25
    return bn


def test_forward_hand_values():
    x = torch.tensor([[[[5.0]], [[0.0]]]])  # (1, 2, 1, 1)
    # channel 0: (5 - 3) / 2 * 2 + 1 = 3 ; channel 1: (0 + 2) / 0.5 * 0.5 - 1 = 1
    expected = torch.tensor([[[[3.0]], [[1.0]]]])
    bn = _frozen()
    torch.testing.assert_close(bn(x), expected)
    # the explicit scale/bias path used when gradients are needed gives the same numbers
    torch.testing.assert_close(bn(x.clone().requires_grad_()), expected)


def test_matches_f_batch_norm_eval():
    bn = _frozen()
    x = torch.randn(3, 2, 5, 4, generator=torch.Generator().manual_seed(0))
    ref = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=1e-5)
    torch.testing.assert_close(bn(x), ref)
    torch.testing.assert_close(bn(x.requires_grad_()), ref, rtol=1e-5, atol=1e-6)


def test_fresh_layer_is_identity_and_buffers_only():
    bn = FrozenBatchNorm2d(3)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(bn(x), x)
    assert list(bn.parameters()) == []
    assert list(bn.state_dict().keys()) == ["weight", "bias", "running_mean", "running_var"]
    assert repr(bn) == "FrozenBatchNorm2d(num_features=3, eps=1e-05)"


def test_load_old_checkpoint_without_running_stats():
    model = nn.Sequential(FrozenBatchNorm2d(2))
    old = OrderedDict({"0.weight": torch.tensor([2.0, 3.0]), "0.bias": torch.tensor([1.0, 1.0])})
    old._metadata = {"0": {"version": 1}}
    result = model.load_state_dict(old, strict=True)  # no missing keys reported
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert model[0].running_mean.tolist() == [0, 0] and model[0].running_var.tolist() == [1, 1]
    # with the current version the running stats are required
    new = OrderedDict({"0.weight": torch.ones(2), "0.bias": torch.zeros(2)})
    new._metadata = {"0": {"version": 3}}
    with pytest.raises(RuntimeError, match="running_mean"):
        model.load_state_dict(new)


def test_convert_frozen_batchnorm():
    bn = nn.BatchNorm2d(2)
    bn.weight.data = torch.tensor([2.0, 3.0])
    bn.running_mean.data = torch.tensor([0.5, 1.5])
    bn.eps = 1e-3
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Sequential(bn))
    out = FrozenBatchNorm2d.convert_frozen_batchnorm(model)
    assert out is model
    frozen = model[1][0]
    assert isinstance(frozen, FrozenBatchNorm2d)
    assert frozen.weight.tolist() == [2, 3] and frozen.running_mean.tolist() == [0.5, 1.5]
    assert frozen.eps == 1e-3
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(frozen(x), bn.eval()(x))
    assert isinstance(FrozenBatchNorm2d.convert_frozen_batchnorm(nn.BatchNorm2d(4)), FrozenBatchNorm2d)
    back = FrozenBatchNorm2d.convert_frozenbatchnorm2d_to_batchnorm2d(model)
    assert isinstance(back[1][0], nn.BatchNorm2d)
    torch.testing.assert_close(back[1][0].eval()(x), frozen(x))


def test_get_norm():
    assert get_norm(None, 8) is None and get_norm("", 8) is None
    assert type(get_norm("BN", 8)) is nn.BatchNorm2d and get_norm("BN", 8).num_features == 8
    assert isinstance(get_norm("FrozenBN", 8), FrozenBatchNorm2d)
    gn = get_norm("GN", 64)
    assert isinstance(gn, nn.GroupNorm) and gn.num_groups == 32 and gn.num_channels == 64
    assert isinstance(get_norm("SyncBN", 8), nn.SyncBatchNorm)
    assert isinstance(get_norm("nnSyncBN", 8), nn.SyncBatchNorm)
    assert isinstance(get_norm("naiveSyncBN", 8), NaiveSyncBatchNorm)
    assert isinstance(get_norm("LN", 8), LayerNorm)
    custom = get_norm(lambda c: nn.GroupNorm(4, c), 8)
    assert custom.num_groups == 4
    with pytest.raises(KeyError, match="norm='XX'"):
        get_norm("XX", 8)


def test_sync_bn_at_inference_is_batch_norm():
    x = torch.randn(2, 4, 3, 3)
    ref = nn.BatchNorm2d(4).eval()
    ref.running_mean.data = torch.arange(4.0)
    for norm in ("SyncBN", "naiveSyncBN"):
        m = get_norm(norm, 4).eval()
        m.load_state_dict(ref.state_dict())
        torch.testing.assert_close(m(x), ref(x))
    with pytest.raises(ValueError, match="stats_mode"):
        NaiveSyncBatchNorm(4, stats_mode="X")


def test_layer_norm_over_channels():
    ln = LayerNorm(3)
    x = torch.randn(2, 3, 4, 5)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (3,), eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(ln(x), ref, rtol=1e-5, atol=1e-5)


def test_cycle_batch_norm_list_uses_one_statistics_set_per_call():
    from detectron2_export.layers import CycleBatchNormList

    norm = CycleBatchNormList(length=3, num_features=2).eval()
    assert list(norm.state_dict())[:3] == ["weight", "bias", "0.running_mean"]
    assert "2.num_batches_tracked" in norm.state_dict() and "0.weight" not in norm.state_dict()
    with torch.no_grad():
        for k, bn in enumerate(norm):
            bn.running_mean.copy_(torch.tensor([k, -k], dtype=torch.float32))
            bn.running_var.copy_(torch.tensor([4.0, 1.0]) * (k + 1))
        norm.weight.copy_(torch.tensor([2.0, 3.0]))
        norm.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.arange(8.0).reshape(1, 2, 2, 2)
    for call in range(5):  # levels 0, 1, 2, 0, 1
        k = call % 3
        mean = torch.tensor([k, -k], dtype=torch.float32).view(1, 2, 1, 1)
        var = (torch.tensor([4.0, 1.0]) * (k + 1)).view(1, 2, 1, 1)
        expected = (x - mean) / torch.sqrt(var + 1e-5) * torch.tensor([2.0, 3.0]).view(1, 2, 1, 1) + torch.tensor(
            [0.5, -1.0]
        ).view(1, 2, 1, 1)
        torch.testing.assert_close(norm(x), expected)
    plain = CycleBatchNormList(length=2, num_features=2, affine=False).eval()
    assert "weight" not in plain.state_dict() and "affine=False" in repr(plain)
    torch.testing.assert_close(plain(x), torch.nn.functional.batch_norm(x, torch.zeros(2), torch.ones(2)))
