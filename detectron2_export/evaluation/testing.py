"""Reporting evaluation results: detectron2's copy-paste CSV lines, and side-by-side AP tables."""

from __future__ import annotations

import logging
import pprint
from typing import Any, Mapping

import numpy as np

from .tables import pipe_table

__all__ = ["print_csv_format", "verify_results", "flatten_results_dict", "format_ap_table", "format_ap_comparison"]

logger = logging.getLogger(__name__)


def print_csv_format(results: Mapping[str, Any]) -> None:
    """Log each task's main metrics (not the per-category "AP-x" ones) as CSV lines to copy into a sheet::

        copypaste: Task: bbox
        copypaste: AP,AP50,AP75,APs,APm,APl
        copypaste: 41.4670,60.7410,47.1200,32.4400,43.6950,44.7990
    """
    if not isinstance(results, Mapping) and len(results):
        raise TypeError(f"print_csv_format: results={type(results).__name__}, expected a mapping task -> metrics")
    for task, res in results.items():
        if isinstance(res, Mapping):
            important = [(k, v) for k, v in res.items() if "-" not in k]
            logger.info("copypaste: Task: %s", task)
            logger.info("copypaste: %s", ",".join(k for k, _ in important))
            logger.info("copypaste: %s", ",".join(f"{v:.4f}" for _, v in important))
        else:
            logger.info("copypaste: %s=%s", task, res)


def verify_results(cfg: Any, results: Mapping[str, Mapping[str, float]]) -> bool:
    """Check ``cfg.TEST.EXPECTED_RESULTS`` (``[[task, metric, expected, tolerance], ...]``).

    Logs the mismatch and returns False (upstream exits the process instead).
    """
    expected_results = cfg.TEST.EXPECTED_RESULTS
    if not len(expected_results):
        return True
    ok = True
    for task, metric, expected, tolerance in expected_results:
        actual = results.get(task, {}).get(metric, None)
        if actual is None or not np.isfinite(actual) or abs(actual - expected) > tolerance:
            ok = False
    if ok:
        logger.info("Results verification passed.")
    else:
        logger.error("Result verification failed!")
        logger.error("Expected Results: %s", expected_results)
        logger.error("Actual Results: %s", pprint.pformat(results))
    return ok


def flatten_results_dict(results: Mapping[str, Any]) -> dict[str, Any]:
    """``{"bbox": {"AP": 1}}`` -> ``{"bbox/AP": 1}`` (nested mappings joined with "/")."""
    flat = {}
    for k, v in results.items():
        if isinstance(v, Mapping):
            for kk, vv in flatten_results_dict(v).items():
                flat[f"{k}/{kk}"] = vv
        else:
            flat[k] = v
    return flat


def _metric_names(per_task: list[Mapping[str, float]]) -> list[str]:
    """Union of metric names in first-seen order (AP, AP50, ..., then AP-<class>)."""
    names: dict[str, None] = {}
    for res in per_task:
        names.update(dict.fromkeys(res))
    return list(names)


def format_ap_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """One row per task, one column per metric (per-category APs included), values with 3 decimals."""
    tasks = [t for t, r in results.items() if isinstance(r, Mapping)]
    metrics = _metric_names([results[t] for t in tasks])
    rows = [[t] + [results[t].get(m) for m in metrics] for t in tasks]
    return pipe_table(["task"] + metrics, rows, align="left")


def format_ap_comparison(named_results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Side-by-side metrics of several models (e.g. {"eager": r1, "caffe2": r2}) per task.

    One row per (task, metric), one column per model; with exactly two models a last column holds
    the difference second - first.
    """
    names = list(named_results)
    tasks = list(dict.fromkeys(t for r in named_results.values() for t, v in r.items() if isinstance(v, Mapping)))
    with_delta = len(names) == 2
    headers = ["task", "metric"] + names + (["delta"] if with_delta else [])
    rows = []
    for task in tasks:
        per_model = [named_results[n].get(task, {}) for n in names]
        for metric in _metric_names(per_model):
            values = [r.get(metric) for r in per_model]
            row = [task, metric] + values
            if with_delta:
                row.append(values[1] - values[0] if None not in values else None)
            rows.append(row)
    return pipe_table(headers, rows, align="left")
