import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

D2_DISTRIBUTE = dict(roi_canonical_scale=224, roi_canonical_level=4, roi_max_level=5, roi_min_level=2)


def square(side, x0=0.0, batch=0.0):
    return [batch, x0, 0.0, x0 + side, side]


def level_inputs():
    rois0 = torch.tensor([square(10, 0), square(10, 1)])
    rois1 = torch.tensor([square(10, 2), square(10, 3)])
    return [rois0, rois1, torch.tensor([0.5, 0.9]), torch.tensor([0.9, 0.1])]


@pytest.mark.parametrize("top_n, expected_x0", [(3, [1, 2, 0]), (0, [1, 2, 0, 3]), (10, [1, 2, 0, 3])])
def test_collect_sorts_by_score_ties_by_index(top_n, expected_x0):
    (rois,) = run_single_op("CollectRpnProposals", level_inputs(), rpn_max_level=3, rpn_min_level=2,
                            rpn_post_nms_topN=top_n)
    # scores (0.5, 0.9 | 0.9, 0.1): the tied 0.9s keep their concatenation order
    assert rois[:, 1].tolist() == expected_x0


def test_collect_limit_is_over_all_images():
    rois = torch.tensor([square(10, 0, batch=0), square(10, 1, batch=1), square(10, 2, batch=1)])
    (out,) = run_single_op("CollectRpnProposals", [rois, torch.tensor([0.1, 0.3, 0.2])], rpn_max_level=2,
                           rpn_min_level=2, rpn_post_nms_topN=2)
    assert out[:, 0].tolist() == [1.0, 1.0]


def test_collect_checks_level_count():
    with pytest.raises(OperatorInputError, match=r"CollectRpnProposals: 4 inputs, expected .* = 10"):
        run_single_op("CollectRpnProposals", level_inputs())  # default levels 2..6


SIDES = [224, 10, 448, 112, 1000, 56]  # levels 4, 2 (clipped), 5, 3, 5 (clipped), 2


def test_distribute_levels_and_restore_index():
    rois = torch.tensor([square(s, x0=i) for i, s in enumerate(SIDES)])
    *levels, restore = run_single_op("DistributeFpnProposals", [rois], num_outputs=5, legacy_plus_one=False,
                                     **D2_DISTRIBUTE)
    assert [lvl[:, 1].tolist() for lvl in levels] == [[1, 5], [3], [0], [2, 4]]  # original order kept per level
    assert restore.dtype == torch.int32 and restore.tolist() == [3, 0, 4, 2, 5, 1]
    # the restore index undoes the level grouping
    (restored,) = run_single_op("BatchPermutation", [torch.cat(levels), restore])
    torch.testing.assert_close(restored, rois)


@pytest.mark.parametrize("legacy, level", [(True, 3), (False, 2)])
def test_distribute_legacy_plus_one_at_a_level_boundary(legacy, level):
    # 111 pixels (+1 = 112 = 224 / 2) sits exactly on level 3 only with legacy_plus_one
    *levels, _ = run_single_op("DistributeFpnProposals", [torch.tensor([[0.0, 0, 0, 111, 111]])], num_outputs=5,
                               legacy_plus_one=legacy, **D2_DISTRIBUTE)
    assert [lvl.shape[0] for lvl in levels] == [int(lvl == level) for lvl in range(2, 6)]


def test_distribute_four_columns_get_batch_zero():
    *levels, restore = torch.ops._caffe2.DistributeFpnProposals(torch.tensor([[0.0, 0, 224, 224]]), 224, 4, 5, 2, False)
    torch.testing.assert_close(levels[2], torch.tensor([[0.0, 0, 0, 224, 224]]))
    assert [lvl.shape for lvl in levels] == [(0, 5), (0, 5), (1, 5), (0, 5)] and restore.tolist() == [0]


def test_distribute_other_level_counts_at_runtime():
    rois = torch.tensor([square(s, x0=i) for i, s in enumerate(SIDES)])
    *levels, restore = run_single_op("DistributeFpnProposals", [rois], num_outputs=6, roi_min_level=2,
                                     roi_max_level=6, legacy_plus_one=False)
    assert [lvl.shape[0] for lvl in levels] == [2, 1, 1, 1, 1]  # 1000 px is level 6 now
    with pytest.raises(OperatorArgumentError, match=r"roi_max_level - roi_min_level \+ 1=5, expected 4"):
        torch.ops._caffe2.DistributeFpnProposals(rois, 224, 4, 6, 2, False)


def test_distribute_empty_and_negative_areas():
    *levels, restore = torch.ops._caffe2.DistributeFpnProposals(torch.zeros(0, 5), 224, 4, 5, 2, False)
    assert all(lvl.shape == (0, 5) for lvl in levels) and restore.shape == (0,)
    with pytest.raises(OperatorInputError, match=r"Negative areas founds"):
        torch.ops._caffe2.DistributeFpnProposals(torch.tensor([[0.0, 0, 0, 10, -5]]), 224, 4, 5, 2, False)


def test_collect_and_distribute_equals_the_two_ops():
    g = torch.Generator().manual_seed(0)
    inputs = []
    for _ in range(2):
        xy = torch.rand(20, 2, generator=g) * 300
        inputs.append(torch.cat((torch.zeros(20, 1), xy, xy + torch.rand(20, 2, generator=g) * 500 + 1), dim=1))
    inputs += [torch.rand(20, generator=g), torch.rand(20, generator=g)]
    args = dict(rpn_max_level=3, rpn_min_level=2, rpn_post_nms_topN=25)
    fused = run_single_op("CollectAndDistributeFpnRpnProposals", inputs, num_outputs=6, legacy_plus_one=False,
                          **D2_DISTRIBUTE, **args)
    (collected,) = run_single_op("CollectRpnProposals", inputs, **args)
    distributed = run_single_op("DistributeFpnProposals", [collected], num_outputs=5, legacy_plus_one=False,
                                **D2_DISTRIBUTE)
    assert len(fused) == 6 and fused[0].shape == (25, 5)
    for a, b in zip(fused, (collected,) + distributed):
        torch.testing.assert_close(a, b)


def test_opcheck():
    inputs = level_inputs()
    torch.library.opcheck(torch.ops._caffe2.CollectRpnProposals.default, (inputs, 3, 2, 3))
    rois = torch.tensor([square(s, x0=i) for i, s in enumerate(SIDES)])
    torch.library.opcheck(torch.ops._caffe2.DistributeFpnProposals.default, (rois, 224, 4, 5, 2, False))
    torch.library.opcheck(
        torch.ops._caffe2.CollectAndDistributeFpnRpnProposals.default, (inputs, 224, 4, 5, 2, 3, 2, 3, True)
    )
