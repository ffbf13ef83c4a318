"""Run a model over a data loader and feed an evaluator, as ``detectron2.evaluation.evaluator``."""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict, abc
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn
from tqdm import tqdm

from ..utils import comm

__all__ = ["DatasetEvaluator", "DatasetEvaluators", "inference_on_dataset", "inference_context"]

logger = logging.getLogger(__name__)


class DatasetEvaluator:
    """Accumulates (inputs, outputs) pairs with ``process`` and turns them into metrics in ``evaluate``."""

    def reset(self) -> None:
        """Forget everything processed so far (called before a new evaluation)."""

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        """inputs: one batch as given to the model; outputs: what the model returned for it."""

    def evaluate(self) -> dict | None:
        """``{task: {metric: value}}``; None on processes that do not report."""


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators fed the same data; their result dicts are merged."""

    def __init__(self, evaluators: list[DatasetEvaluator]):
        super().__init__()
        self._evaluators = evaluators

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def evaluate(self) -> OrderedDict:
        results: OrderedDict = OrderedDict()
        for evaluator in self._evaluators:
            result = evaluator.evaluate()
            for k, v in (result or {}).items():
                if k in results:
                    raise ValueError(f"DatasetEvaluators: two evaluators produce results for the same key {k!r}")
                results[k] = v
        return results


@contextmanager
def inference_context(model: nn.Module) -> Iterator[None]:
    """Put the model in eval mode for the block, then restore its training flag."""
    training_mode = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(training_mode)


class _EveryNSeconds:
    """Log at most once per ``n`` seconds (detectron2's log_every_n_seconds)."""

    def __init__(self, n: float):
        self.n = n
        self.last = float("-inf")

    def __call__(self, msg: str) -> None:
        now = time.perf_counter()
        if now - self.last >= self.n:
            logger.info(msg)
            self.last = now


def inference_on_dataset(
    model: Callable[[list[dict]], list[dict]],
    data_loader: Iterable[list[dict]],
    evaluator: DatasetEvaluator | list[DatasetEvaluator] | None,
    callbacks: dict[str, Callable[[], None]] | None = None,
    *,
    progress: bool = True,
    desc: str = "inference",
) -> dict[str, Any]:
    """Run ``model`` on every batch of ``data_loader`` (no grad, eval mode) and return ``evaluator.evaluate()``.

    Under torch.distributed every rank calls this with its own shard (the test loader's
    ``InferenceSampler``); the evaluator gathers to rank 0, and the other ranks return {}.
    Timings exclude the first ``min(5, len - 1)`` warm-up batches, as upstream. ``callbacks`` may
    hold "on_start", "before_inference", "after_inference", "on_end". ``progress`` shows a tqdm
    bar labelled ``desc`` on stderr (rank 0's shard only).
    """
    num_devices = comm.get_world_size()
    logger.info("Start inference on %d batches", len(data_loader))
    total = len(data_loader)  # an inference loader has a fixed length
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    if isinstance(evaluator, abc.MutableSequence):
        evaluator = DatasetEvaluators(evaluator)
    evaluator.reset()
    callbacks = callbacks or {}

    def callback(name: str) -> None:
        callbacks.get(name, lambda: None)()

    num_warmup = min(5, total - 1)
    log_progress = _EveryNSeconds(5)
    start_time = time.perf_counter()
    total_data_time = total_compute_time = total_eval_time = 0.0
    with ExitStack() as stack:
        if isinstance(model, nn.Module):
            stack.enter_context(inference_context(model))
        stack.enter_context(torch.no_grad())
        bar = stack.enter_context(tqdm(total=total, desc=desc, disable=not (progress and comm.is_main_process()), unit="img", dynamic_ncols=True))

        start_data_time = time.perf_counter()
        callback("on_start")
        for idx, inputs in enumerate(data_loader):
            total_data_time += time.perf_counter() - start_data_time
            if idx == num_warmup:
                start_time = time.perf_counter()
                total_data_time = total_compute_time = total_eval_time = 0.0

            start_compute_time = time.perf_counter()
            callback("before_inference")
            outputs = model(inputs)
            callback("after_inference")
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            total_compute_time += time.perf_counter() - start_compute_time

            start_eval_time = time.perf_counter()
            evaluator.process(inputs, outputs)
            total_eval_time += time.perf_counter() - start_eval_time
            bar.update(1)

            iters_after_start = idx + 1 - num_warmup * int(idx >= num_warmup)
            compute_per_iter = total_compute_time / iters_after_start
            if idx >= num_warmup * 2 or compute_per_iter > 5:
                total_per_iter = (time.perf_counter() - start_time) / iters_after_start
                eta = datetime.timedelta(seconds=int(total_per_iter * (total - idx - 1)))
                log_progress(
                    f"Inference done {idx + 1}/{total}. "
                    f"Dataloading: {total_data_time / iters_after_start:.4f} s/iter. "
                    f"Inference: {compute_per_iter:.4f} s/iter. "
                    f"Eval: {total_eval_time / iters_after_start:.4f} s/iter. "
                    f"Total: {total_per_iter:.4f} s/iter. "
                    f"ETA={eta}"
                )
            start_data_time = time.perf_counter()
        callback("on_end")

    timed_iters = max(total - num_warmup, 1)
    total_time = time.perf_counter() - start_time
    logger.info(
        "Total inference time: %s (%.6f s / iter per device, on %d devices)",
        datetime.timedelta(seconds=total_time),
        total_time / timed_iters,
        num_devices,
    )
    logger.info(
        "Total inference pure compute time: %s (%.6f s / iter per device, on %d devices)",
        datetime.timedelta(seconds=int(total_compute_time)),
        total_compute_time / timed_iters,
        num_devices,
    )
    results = evaluator.evaluate()
    return {} if results is None else results
