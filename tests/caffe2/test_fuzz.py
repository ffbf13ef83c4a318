"""2,000 seeded mutations of valid .pb files through the loader and the executor: each one either
works or raises one of the project's errors (never another exception, a crash or a hang)."""

import random
import time

import pytest
import torch

from detectron2_export.caffe2.serialization import parse_message
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import Detectron2ExportError
from tests.caffe2.small_net import INPUT_SHAPE, build_nets, make_params

N_MUTANTS = 2000


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.choice(("flip", "truncate", "insert", "delete"))
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del b[rng.randrange(len(b)) :]
    elif kind == "insert":
        for _ in range(rng.randint(1, 3)):
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
    else:
        del b[rng.randrange(len(b))]
    return bytes(b)


def _load_and_run(predict_bytes: bytes, init_bytes: bytes, x: torch.Tensor) -> None:
    predict = parse_message(predict_bytes, where="model.pb")
    init = parse_message(init_bytes, where="model_init.pb")
    ws = Workspace("fuzz")
    ws.RunNetOnce(init)
    ws.FeedBlob("data", x)
    ws.CreateNet(predict)
    ws.RunNet(predict.name)


def test_fuzz_mutated_pb_files():
    # Small weights keep init_net short, so that mutations hit the predict net's structure often.
    predict, init = build_nets(make_params())
    good_predict, good_init = predict.SerializeToString(), init.SerializeToString()
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    _load_and_run(good_predict, good_init, x)  # the unmutated pair works
    rng = random.Random(1234)
    outcomes: dict[str, int] = {}
    start = time.monotonic()
    for i in range(N_MUTANTS):
        mutate_predict = i % 2 == 0
        p = _mutate(good_predict, rng) if mutate_predict else good_predict
        q = good_init if mutate_predict else _mutate(good_init, rng)
        try:
            _load_and_run(p, q, x)
            outcome = "ok"
        except Detectron2ExportError as e:
            outcome = type(e).__name__
        except Exception as e:  # noqa: BLE001 - the point of the test
            pytest.fail(f"mutant {i} raised {type(e).__name__}: {e}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    elapsed = time.monotonic() - start
    # The mutations reach past the parser: some mutants parse and fail in the executor, some still run.
    assert outcomes.get("ProtobufError", 0) > 100
    assert outcomes.get("ok", 0) > 100
    assert sum(v for k, v in outcomes.items() if k not in ("ok", "ProtobufError")) > 100, outcomes
    assert elapsed < 60, f"fuzzing took {elapsed:.1f}s"
