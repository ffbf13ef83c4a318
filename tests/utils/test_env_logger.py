"""utils.env.seed_all_rng / TORCH_VERSION and utils.logger.setup_logger / log_* (upstream behaviour)."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import pytest
import torch

from detectron2_export.utils.env import TORCH_VERSION, seed_all_rng
from detectron2_export.utils.logger import (
    create_small_table,
    log_every_n,
    log_every_n_seconds,
    log_first_n,
    setup_logger,
)


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_all_rng_repeats_every_generator(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    assert seed_all_rng(1234) == 1234
    first = _draws()
    assert os.environ["PYTHONHASHSEED"] == "1234"
    seed_all_rng(1234)
    assert _draws() == first
    seed_all_rng(1235)
    assert all(a != b for a, b in zip(_draws(), first))
    # Python's generator with seed 1234 draws this first (CPython's Mersenne Twister)
    random.seed(1234)
    expected = random.random()
    seed_all_rng(1234)
    assert random.random() == expected


def test_seed_all_rng_without_seed_draws_and_logs_one(caplog):
    with caplog.at_level(logging.INFO, logger="detectron2_export.utils.env"):
        seed = seed_all_rng()
    assert f"Using a generated random seed {seed}" in caplog.text
    assert os.environ["PYTHONHASHSEED"] == str(seed)


def test_torch_version():
    major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    assert TORCH_VERSION == (major, minor) and TORCH_VERSION >= (2, 0)


@pytest.fixture
def fresh_logger_name(request):
    name = f"test_setup_logger_{request.node.name}"
    yield name
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_setup_logger_stdout_file_and_cache(tmp_path, capsys, fresh_logger_name):
    name = fresh_logger_name
    logger = setup_logger(str(tmp_path / "out"), name=name, color=False)
    assert logger is logging.getLogger(name) and logger.level == logging.DEBUG and not logger.propagate
    assert setup_logger(str(tmp_path / "out"), name=name, color=False) is logger
    assert len(logger.handlers) == 2  # cached: the second call added nothing
    logging.getLogger(f"{name}.sub").debug("hello %d", 7)
    for handler in logger.handlers:
        handler.flush()
    stdout = capsys.readouterr().out
    assert stdout.endswith(f"] {name}.sub DEBUG: hello 7\n")
    assert (tmp_path / "out" / "log.txt").read_text().endswith(f"] {name}.sub DEBUG: hello 7\n")


def test_setup_logger_rank_and_file_name(tmp_path, capsys, fresh_logger_name):
    logger = setup_logger(str(tmp_path / "run.log"), distributed_rank=2, name=fresh_logger_name)
    logger.warning("from rank 2")
    for handler in logger.handlers:
        handler.flush()
    assert capsys.readouterr().out == ""  # stdout on rank 0 only
    assert (tmp_path / "run.log.rank2").read_text().endswith(f"{fresh_logger_name} WARNING: from rank 2\n")


def test_setup_logger_colour_and_abbreviation(capsys, fresh_logger_name):
    logger = setup_logger(name=fresh_logger_name, abbrev_name="ab")
    logging.getLogger(f"{fresh_logger_name}.part").info("info")
    logger.warning("careful")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("\033[32m[") and out[0].endswith(" ab.part]: \033[0minfo")
    assert out[1].startswith("\033[31mWARNING\033[0m \033[32m[") and out[1].endswith("]: \033[0mcareful")


def test_log_first_n_and_every_n(caplog):
    with caplog.at_level(logging.INFO):
        for i in range(5):
            log_first_n(logging.INFO, f"first {i}", n=2)
            log_every_n(logging.INFO, f"every {i}", n=2)
            log_every_n_seconds(logging.INFO, f"seconds {i}", n=3600)
        for i in range(3):
            log_first_n(logging.INFO, "same message", n=1, key="message")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["first 0", "every 0", "seconds 0", "first 1", "every 2", "every 4", "same message"]
    assert {r.name for r in caplog.records} == {__name__}


def test_create_small_table_is_detectrons_tabulate_call():
    tabulate = pytest.importorskip("tabulate").tabulate
    small = {"AP": 40.1234, "AP50": 60.0, "APs": float("nan")}
    expected = tabulate(
        [list(small.values())], headers=list(small), tablefmt="pipe", floatfmt=".3f", stralign="center", numalign="center"
    )
    assert create_small_table(small) == expected


def test_custom_environment_module(tmp_path, monkeypatch):
    import detectron2_export.utils.env as env
    from detectron2_export.errors import ConfigError

    marker = tmp_path / "ran.txt"
    script = tmp_path / "site_env.py"
    script.write_text(f"def setup_environment():\n    open({str(marker)!r}, 'a').write('x')\n")
    monkeypatch.setattr(env, "_ENV_SETUP_DONE", False)
    monkeypatch.setenv("DETECTRON2_ENV_MODULE", str(script))
    env.setup_environment()
    env.setup_environment()  # once per process
    assert marker.read_text() == "x"
    env.setup_custom_environment(str(script))
    assert marker.read_text() == "xx"
    (tmp_path / "no_hook.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match=r"no_hook\.py', expected a module with a callable setup_environment"):
        env.setup_custom_environment(str(tmp_path / "no_hook.py"))
    module = env._import_file("some_test_module", str(tmp_path / "no_hook.py"), make_importable=True)
    assert module.x == 1 and __import__("sys").modules["some_test_module"] is module
    monkeypatch.delitem(__import__("sys").modules, "some_test_module")
