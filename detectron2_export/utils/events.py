"""Metric storage of a run, as ``detectron2.utils.events`` (v0.6).

Model code calls ``get_event_storage().put_scalar(...)`` (detectron2's training-time
visualisations and losses do); an :class:`EventStorage` works here exactly as upstream, so code
that records scalars, images or histograms inside ``with EventStorage():`` runs unchanged at
inference. The writers that turn a storage into training logs (JSON lines, console, TensorBoard)
are training-only: importable, :class:`TrainingOnlyError` when built.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from fvcore.common.history_buffer import HistoryBuffer

from ..errors import Detectron2ExportError
from .training_only import training_only_class

__all__ = [
    "get_event_storage",
    "JSONWriter",
    "TensorboardXWriter",
    "CommonMetricPrinter",
    "EventStorage",
    "EventWriter",
    "EventStorageError",
]

_CURRENT_STORAGE_STACK: list["EventStorage"] = []


class EventStorageError(Detectron2ExportError, AssertionError):
    """No EventStorage is open, or a scalar was put with two different smoothing hints
    (an AssertionError, as upstream's asserts)."""


def get_event_storage() -> "EventStorage":
    """The innermost open :class:`EventStorage`."""
    if not _CURRENT_STORAGE_STACK:
        raise EventStorageError("get_event_storage() has to be called inside a 'with EventStorage(...)' context!")
    return _CURRENT_STORAGE_STACK[-1]


class EventWriter:
    """Base class of what writes an EventStorage's content somewhere (``write`` each period)."""

    def write(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


JSONWriter = training_only_class(__name__, "JSONWriter", EventWriter)
TensorboardXWriter = training_only_class(__name__, "TensorboardXWriter", EventWriter)
CommonMetricPrinter = training_only_class(__name__, "CommonMetricPrinter", EventWriter)


class EventStorage:
    """Scalars (with their history per iteration), images and histograms put during a run.

    Used as a context manager: ``get_event_storage()`` inside the block returns it.
    """

    def __init__(self, start_iter: int = 0):
        self._history: defaultdict[str, HistoryBuffer] = defaultdict(HistoryBuffer)
        self._smoothing_hints: dict[str, bool] = {}
        self._latest_scalars: dict[str, tuple[float, int]] = {}
        self._iter = start_iter
        self._current_prefix = ""
        self._vis_data: list[tuple[str, Any, int]] = []
        self._histograms: list[dict[str, Any]] = []

    def put_image(self, img_name: str, img_tensor: torch.Tensor) -> None:
        """Keep a CHW RGB image in [0, 1] (or [0, 255]) under ``img_name`` at this iteration."""
        self._vis_data.append((img_name, img_tensor, self._iter))

    def put_scalar(self, name: str, value: float, smoothing_hint: bool = True) -> None:
        """Record ``value`` under (name scope +) ``name`` at this iteration. ``smoothing_hint`` says
        whether writers should report its windowed median; it must stay the same for a name."""
        name = self._current_prefix + name
        value = float(value)
        self._history[name].update(value, self._iter)
        self._latest_scalars[name] = (value, self._iter)
        existing = self._smoothing_hints.get(name)
        if existing is None:
            self._smoothing_hints[name] = smoothing_hint
        elif existing != smoothing_hint:
            raise EventStorageError(f"Scalar {name} was put with a different smoothing_hint!")

    def put_scalars(self, *, smoothing_hint: bool = True, **kwargs: float) -> None:
        """``put_scalar`` for each keyword argument."""
        for name, value in kwargs.items():
            self.put_scalar(name, value, smoothing_hint=smoothing_hint)

    def put_histogram(self, hist_name: str, hist_tensor: torch.Tensor, bins: int = 1000) -> None:
        """Record a histogram of ``hist_tensor``'s values in ``bins`` equal bins over its range."""
        low, high = hist_tensor.min().item(), hist_tensor.max().item()
        counts = torch.histc(hist_tensor, bins=bins)
        edges = torch.linspace(start=low, end=high, steps=bins + 1, dtype=torch.float32)
        self._histograms.append(
            dict(
                tag=hist_name,
                min=low,
                max=high,
                num=len(hist_tensor),
                sum=float(hist_tensor.sum()),
                sum_squares=float(torch.sum(hist_tensor**2)),
                bucket_limits=edges[1:].tolist(),
                bucket_counts=counts.tolist(),
                global_step=self._iter,
            )
        )

    def history(self, name: str) -> HistoryBuffer:
        """The (value, iteration) history of scalar ``name``; KeyError if never put."""
        if name not in self._history:
            raise KeyError(f"No history metric available for {name}!")
        return self._history[name]

    def histories(self) -> dict[str, HistoryBuffer]:
        return self._history

    def latest(self) -> dict[str, tuple[float, int]]:
        """name -> (latest value, the iteration it was put at)."""
        return self._latest_scalars

    def latest_with_smoothing_hint(self, window_size: int = 20) -> dict[str, tuple[float, int]]:
        """As :meth:`latest`, but the median of the last ``window_size`` values where the scalar's
        smoothing hint is True."""
        return {
            name: (self._history[name].median(window_size) if self._smoothing_hints[name] else value, itr)
            for name, (value, itr) in self._latest_scalars.items()
        }

    def smoothing_hints(self) -> dict[str, bool]:
        return self._smoothing_hints

    def step(self) -> None:
        """Move on to the next iteration."""
        self._iter += 1

    @property
    def iter(self) -> int:
        """The current iteration (what puts are recorded at)."""
        return self._iter

    @iter.setter
    def iter(self, val: int) -> None:
        self._iter = int(val)

    @property
    def iteration(self) -> int:
        """Older name of :attr:`iter`."""
        return self._iter

    def __enter__(self) -> "EventStorage":
        _CURRENT_STORAGE_STACK.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        if not _CURRENT_STORAGE_STACK or _CURRENT_STORAGE_STACK[-1] is not self:
            raise EventStorageError("EventStorage: exited a storage that is not the innermost open one")
        _CURRENT_STORAGE_STACK.pop()

    @contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Scalars put inside are prefixed with ``name/``."""
        old_prefix = self._current_prefix
        self._current_prefix = name.rstrip("/") + "/"
        try:
            yield
        finally:
            self._current_prefix = old_prefix

    def clear_images(self) -> None:
        """Drop the images put so far (a writer calls this once it wrote them)."""
        self._vis_data = []

    def clear_histograms(self) -> None:
        """Drop the histograms put so far (a writer calls this once it wrote them)."""
        self._histograms = []
