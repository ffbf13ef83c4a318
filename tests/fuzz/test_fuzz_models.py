"""Seeded fuzzing of the exported shapes Mask R-CNN through ``Caffe2Model.load_protobuf(dir)(inputs)``
(benchmarks/fuzz_models.py, issue 15): every mutated file or image either runs or raises one of the
project's errors; no case crashes, hangs, exhausts its 6 GiB address space or raises anything else.

The longer run is a command: ``python benchmarks/fuzz_models.py --cases 10000 --jobs 2``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import fuzz_models as fuzz

N_CASES = 200
SEED = 0


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> fuzz.Base:
    from tests.cpp.shapes_model import export_shapes_mask_rcnn

    out = tmp_path_factory.mktemp("fuzz_shapes")
    export_shapes_mask_rcnn(Path(out))
    loaded = fuzz.load_base(str(out), image_size=128)
    fuzz.warm_up(loaded)  # imports done once, in the parent; the unmutated model runs
    return loaded


def test_seeded_mutations_run_or_raise_project_errors(base):
    opts = fuzz.Options(seed=SEED, cases=N_CASES, jobs=2, timeout=120.0)
    start = time.monotonic()
    results = list(fuzz.run_cases(base, opts))
    summary = fuzz.summarize(results)
    fuzz.print_summary(summary, time.monotonic() - start)
    assert summary["cases"] == N_CASES
    assert summary["bad"] == [], "replay with: python benchmarks/fuzz_models.py --model-dir DIR --replay N"
    # the mutations reach the loader, the validator, the ops and the pre/post-processing
    assert summary["outcomes"].get("ok", 0) >= 5 and summary["outcomes"]["project_error"] >= N_CASES // 2
    kinds = {note.split(":")[0] for r in results for note in r["mutation"]}
    assert len(kinds) >= 10, kinds
    places = {key.split(" at ")[1] for key in summary["errors"]}
    assert any("validate.py" in p for p in places) and any("serialization.py" in p for p in places), places


def test_mutations_are_reproducible(base):
    first = fuzz.make_case(base, SEED, 17)
    again = fuzz.make_case(base, SEED, 17)
    assert first.notes == again.notes and first.predict == again.predict
    assert fuzz.make_case(base, SEED, 18).notes != first.notes or fuzz.make_case(base, SEED + 1, 17).notes != first.notes


def _misbehaving_runner(base: fuzz.Base, case: fuzz.Case, work_dir: str) -> dict:
    """Case 0 raises KeyError, 1 segfaults, 2 hangs, 3 allocates 8 GiB, 4 raises a project error, 5 runs."""
    from detectron2_export.errors import OperatorInputError

    index = int(os.path.basename(work_dir)[len("case"):])
    try:
        if index == 0:
            raise KeyError("bbox_nms")
        if index == 1:
            os.kill(os.getpid(), signal.SIGSEGV)
        if index == 2:
            time.sleep(60)
        if index == 3:
            np.ones(8 << 30, dtype=np.uint8)
        if index == 4:
            raise OperatorInputError("bad input")
    except Exception as e:  # noqa: BLE001 - recorded as run_python_case records it
        return {"outcome": fuzz.classify(e), "type": type(e).__name__, "place": "runner", "message": str(e)}
    return {"outcome": "ok"}


def test_harness_tells_every_outcome_apart(base):
    """The CI assertion above can fail: each bad outcome is detected and counted."""
    opts = fuzz.Options(seed=SEED, cases=6, jobs=3, timeout=5.0)
    results = sorted(fuzz.run_cases(base, opts, runner=_misbehaving_runner), key=lambda r: r["case"])
    assert [r["outcome"] for r in results] == ["uncaught", "crash", "hang", "memory", "project_error", "ok"]
    assert results[1]["type"] == "SIGSEGV" and results[0]["type"] == "KeyError"
    summary = fuzz.summarize(results)
    assert [r["case"] for r in summary["bad"]] == [0, 1, 2, 3]
