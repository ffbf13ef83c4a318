"""Per-op parity: every case of op_cases.py through the Python runtime and through caffe2_run_net.

All cases run in one C++ process (module fixture); each test compares one case's outputs: same
shapes and dtypes, integer and bool outputs exactly, floats within the case's atol (1e-5 dense,
1e-4 detection ops).
"""

from __future__ import annotations

import numpy as np
import pytest

from detectron2_export.caffe2.workspace import Workspace

from .cpp_runner import Case, run_batch
from .op_cases import OpCase, all_cases

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

CASES = all_cases()
CASES_BY_NAME = {c.name: c for c in CASES}


def run_python(case: OpCase) -> list[np.ndarray]:
    net = case.net()
    ws = Workspace(f"parity_{case.name}")
    for name, value in zip(net.external_input, case.inputs):
        ws.FeedBlob(name, value)
    ws.RunNetOnce(net)
    return [ws.fetch_tensor(name).numpy() for name in net.external_output]


@pytest.fixture(scope="module")
def cpp_results(cpp_tools):
    return run_batch(cpp_tools, [Case(c.name, c.net(), c.inputs) for c in CASES])


def test_cases_cover_every_registered_op():
    """Each op type the Python runtime registers has at least one parity case."""
    from detectron2_export.caffe2.registry import registered_ops

    covered = {c.op_type for c in CASES}
    assert sorted(set(registered_ops()) - covered) == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op_matches_python_runtime(case: OpCase, cpp_results):
    result = cpp_results[case.name]
    assert result.error is None, f"C++ failed: {result.error}"
    expected = run_python(case)
    assert len(result.outputs) == len(expected)
    for k, (got, want) in enumerate(zip(result.outputs, expected)):
        assert got.shape == want.shape, f"output {k}: shape {got.shape} != {want.shape}"
        assert got.dtype == want.dtype, f"output {k}: dtype {got.dtype} != {want.dtype}"
        if want.dtype.kind in "biu":
            np.testing.assert_array_equal(got, want, err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=case.atol, err_msg=f"output {k}")


def test_detection_cases_are_not_degenerate(cpp_results):
    """The detection cases exercise real work: proposals, detections, suppressions, every FPN level."""
    outputs = {name: result.outputs for name, result in cpp_results.items()}
    assert outputs["GenerateProposals/upright_detectron2_args"][0].shape[0] > 20
    n_kept = outputs["BoxWithNMSLimit/detectron2_args"][0].shape[0]
    n_above = int((CASES_BY_NAME["BoxWithNMSLimit/detectron2_args"].inputs[0][:, 1:] > 0.05).sum())
    assert 0 < n_kept < n_above  # some boxes were suppressed
    assert outputs["BoxWithNMSLimit/topk_per_image"][3].tolist() == [6.0, 6.0]
    assert outputs["BoxWithNMSLimit/nothing_above_threshold"][0].shape == (0,)
    assert all(level.shape[0] > 0 for level in outputs["DistributeFpnProposals/four_levels"][:4])
