"""detectron2.utils.logger: ``setup_logger`` and the rate-limited logging helpers scripts use.

``setup_logger()`` configures the package's logger (``detectron2_export``; ``name`` picks another)
the way detectron2 configures ``detectron2``: DEBUG level, a coloured stdout handler on rank 0 and
a plain log file per rank. It is cached, so calling it again adds no handlers.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import time
from collections import Counter
from typing import IO, Any, Mapping

__all__ = ["setup_logger", "log_first_n", "log_every_n", "log_every_n_seconds", "create_small_table"]

_PLAIN_FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
_DATE_FORMAT = "%m/%d %H:%M:%S"
_GREEN, _RED, _BLINK_RED, _RESET = "\033[32m", "\033[31m", "\033[5m\033[31m", "\033[0m"


class _ColorfulFormatter(logging.Formatter):
    """Green time and name, with ``root_name`` shortened to ``abbrev_name``; WARNING in red,
    ERROR and CRITICAL in blinking red, as detectron2's console output."""

    def __init__(self, *, root_name: str, abbrev_name: str) -> None:
        super().__init__(f"{_GREEN}[%(asctime)s %(name)s]: {_RESET}%(message)s", datefmt=_DATE_FORMAT)
        self._root_name = root_name + "."
        self._abbrev_name = abbrev_name + "." if abbrev_name else ""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.name = record.name.replace(self._root_name, self._abbrev_name)
        log = super().formatMessage(record)
        if record.levelno == logging.WARNING:
            return f"{_RED}WARNING{_RESET} {log}"
        if record.levelno >= logging.ERROR:
            return f"{_BLINK_RED}ERROR{_RESET} {log}"
        return log


@functools.lru_cache()  # a second call with the same arguments must not add handlers
def setup_logger(
    output: str | None = None,
    distributed_rank: int = 0,
    *,
    color: bool = True,
    name: str = "detectron2_export",
    abbrev_name: str | None = None,
    enable_propagation: bool = False,
    configure_stdout: bool = True,
) -> logging.Logger:
    """Set logger ``name`` to DEBUG, logging to stdout (rank 0 only) and to a file (every rank).

    Args:
        output: a ``.txt`` / ``.log`` file name, or a directory for ``log.txt``; rank ``r > 0``
            writes ``<file>.rank<r>``. None: no file.
        distributed_rank: this process's rank.
        color: colour the stdout records.
        name: the logger to configure.
        abbrev_name: what ``name`` is shortened to in stdout records; "" drops it. Default "d2"
            for this package (detectron2's abbreviation), ``name`` otherwise.
        enable_propagation: let records reach the parent loggers too.
        configure_stdout: add the stdout handler.
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = enable_propagation
    if abbrev_name is None:
        abbrev_name = "d2" if name in ("detectron2_export", "detectron2") else name
    plain_formatter = logging.Formatter(_PLAIN_FORMAT, datefmt=_DATE_FORMAT)

    if configure_stdout and distributed_rank == 0:
        handler = logging.StreamHandler(stream=sys.stdout)
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(
            _ColorfulFormatter(root_name=name, abbrev_name=abbrev_name) if color else plain_formatter
        )
        logger.addHandler(handler)

    if output is not None:
        filename = output if output.endswith((".txt", ".log")) else os.path.join(output, "log.txt")
        if distributed_rank > 0:
            filename = f"{filename}.rank{distributed_rank}"
        os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        handler = logging.StreamHandler(_cached_log_stream(filename))
        handler.setLevel(logging.DEBUG)
        handler.setFormatter(plain_formatter)
        logger.addHandler(handler)
    return logger


@functools.lru_cache(maxsize=None)  # one stream per file, whoever asks for it
def _cached_log_stream(filename: str) -> IO[str]:
    stream = open(filename, "a", buffering=1024 if "://" in filename else -1)
    atexit.register(stream.close)
    return stream


def _caller() -> tuple[str, tuple[str, int, str]]:
    """(module name, (file, line, function)) of the code that called the log_* helper."""
    frame = sys._getframe(2)  # 0: here, 1: the log_* helper
    module = frame.f_globals.get("__name__", "__main__")
    if module == "__main__":
        module = "detectron2_export"
    return module, (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


_LOG_COUNTER: Counter = Counter()
_LOG_TIMERS: dict[Any, float] = {}


def _key(caller: tuple[str, int, str], msg: str, key: str | tuple[str, ...]) -> tuple:
    keys = (key,) if isinstance(key, str) else key
    return tuple(part for k in keys for part in ((caller,) if k == "caller" else (msg,) if k == "message" else ()))


def log_first_n(
    lvl: int, msg: str, n: int = 1, *, name: str | None = None, key: str | tuple[str, ...] = "caller"
) -> None:
    """Log ``msg`` only the first ``n`` times for the same ``key``: "caller" (the calling line),
    "message", or both (a tuple). ``name``: the logger, by default the caller's module."""
    module, caller = _caller()
    hash_key = _key(caller, msg, key)
    _LOG_COUNTER[hash_key] += 1
    if _LOG_COUNTER[hash_key] <= n:
        logging.getLogger(name or module).log(lvl, msg)


def log_every_n(lvl: int, msg: str, n: int = 1, *, name: str | None = None) -> None:
    """Log ``msg`` on the 1st, (n+1)-th, (2n+1)-th... call from the same line."""
    module, caller = _caller()
    _LOG_COUNTER[caller] += 1
    if n == 1 or _LOG_COUNTER[caller] % n == 1:
        logging.getLogger(name or module).log(lvl, msg)


def log_every_n_seconds(lvl: int, msg: str, n: float = 1, *, name: str | None = None) -> None:
    """Log ``msg`` from the same line at most once every ``n`` seconds."""
    module, caller = _caller()
    last = _LOG_TIMERS.get(caller)
    now = time.time()
    if last is None or now - last >= n:
        logging.getLogger(name or module).log(lvl, msg)
        _LOG_TIMERS[caller] = now


def create_small_table(small_dict: Mapping[str, Any]) -> str:
    """A one-row table of ``small_dict`` (keys as headers), as detectron2 prints metrics."""
    from ..evaluation.tables import create_small_table as small_table  # the evaluation package is heavy

    return small_table(small_dict)
