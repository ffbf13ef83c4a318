"""One ``ProtobufModel`` / ``Caffe2Model`` called from 4 threads at once (issue 15).

Before parameters and activations were split, every call ran in one shared workspace: with
different-size images most concurrent calls raised, and with same-size images some returned another
call's result. Reference: the same inputs run sequentially on the same model; every concurrent
result must equal it exactly (bitwise; one intra-op thread per call, as the tests run).

Inputs are the bundled shapes sample scaled down (96-160 pixels a side) to keep 4 x 50 calls short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import load_net
from detectron2_export.export import Caffe2Model
from tests.cpp.shapes_model import ExportedModel, export_shapes_mask_rcnn

pytestmark = pytest.mark.slow

THREADS = 4
CALLS = 50
SIZES = [(128, 128), (96, 160), (160, 96), (128, 96)]  # (H, W), multiples of the model's 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> ExportedModel:
    return export_shapes_mask_rcnn(tmp_path_factory.mktemp("shapes_caffe2"))


def _raw_inputs(exported: ExportedModel, size: tuple[int, int]) -> list[torch.Tensor]:
    """``data`` resized to ``size`` and the matching ``im_info`` (scale 1)."""
    data = F.interpolate(exported.data, size=size, mode="bilinear", align_corners=False)
    return [data, torch.tensor([[float(size[0]), float(size[1]), 1.0]])]


def _image_inputs(exported: ExportedModel, size: tuple[int, int]) -> list[dict]:
    """A detectron2 input dict whose uint8 image is the sample resized to ``size``."""
    image = _raw_inputs(exported, size)[0][0].round().clamp(0, 255).to(torch.uint8)
    return [{"image": image, "height": size[0], "width": size[1]}]


def _flatten(result: Any) -> list[torch.Tensor]:
    """Every tensor of a ProtobufModel tuple or a Caffe2Model ``[{"instances": ...}]`` result."""
    if isinstance(result, tuple):
        return list(result)
    fields = result[0]["instances"].get_fields()
    return [v.tensor if hasattr(v, "tensor") else v for _, v in sorted(fields.items())]


def _run_concurrently(call: Callable[[Any], Any], schedules: Sequence[Sequence[int]], inputs: list) -> list[list]:
    """Run ``call(inputs[k])`` for each k of each thread's schedule, all threads at once."""
    results: list[list] = [[] for _ in schedules]
    errors: list[BaseException] = []
    start = threading.Barrier(len(schedules))

    def worker(t: int) -> None:
        start.wait()
        try:
            for k in schedules[t]:
                results[t].append((k, call(inputs[k])))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(len(schedules))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, f"{len(errors)} threads raised, first: {errors[0]!r}"
    return results


def _check_against_sequential(call: Callable[[Any], Any], inputs: list, same_size: bool) -> None:
    expected = [_flatten(call(x)) for x in inputs]
    assert all(len(e[0]) > 0 for e in expected), "the sample must give detections, else the check is weak"
    if same_size:
        schedules = [[0] * CALLS for _ in range(THREADS)]
    else:
        schedules = [[(t + i) % len(inputs) for i in range(CALLS)] for t in range(THREADS)]
    mismatches = []
    for t, runs in enumerate(_run_concurrently(call, schedules, inputs)):
        assert len(runs) == CALLS
        for i, (k, result) in enumerate(runs):
            got = _flatten(result)
            if len(got) != len(expected[k]) or not all(
                g.shape == e.shape and torch.equal(g, e) for g, e in zip(got, expected[k])
            ):
                mismatches.append((t, i, k))
    assert not mismatches, f"{len(mismatches)} of {THREADS * CALLS} concurrent calls differ from sequential ones: {mismatches[:5]}"


@pytest.mark.parametrize("same_size", [True, False], ids=["same_size", "different_sizes"])
def test_protobuf_model_from_four_threads(exported, same_size):
    model = ProtobufModel(load_net(exported.directory / "model.pb"), load_net(exported.directory / "model_init.pb"))
    inputs = [_raw_inputs(exported, size) for size in (SIZES[:1] if same_size else SIZES)]
    _check_against_sequential(model, inputs, same_size)


@pytest.mark.parametrize("same_size", [True, False], ids=["same_size", "different_sizes"])
def test_caffe2_model_from_four_threads(exported, same_size):
    model = Caffe2Model.load_protobuf(str(exported.directory))
    inputs = [_image_inputs(exported, size) for size in (SIZES[:1] if same_size else SIZES)]
    _check_against_sequential(model, inputs, same_size)
