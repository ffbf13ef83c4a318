"""Markdown "pipe" tables for metrics (what detectron2 prints with tabulate, without the dependency)."""

from __future__ import annotations

import itertools
from typing import Any, Mapping, Sequence

__all__ = ["pipe_table", "create_small_table", "per_category_table"]


def _cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, floatfmt)
    return str(value)


def pipe_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, floatfmt: str = ".3f", align: str = "center"
) -> str:
    """A markdown table; floats formatted with ``floatfmt``, None as an empty cell.

    align: "center" or "left" (all columns), marked with ':' in the separator line as tabulate does.
    """
    if align not in ("center", "left"):
        raise ValueError(f"pipe_table: align={align!r}, expected 'center' or 'left'")
    cells = [[_cell(v, floatfmt) for v in row] for row in rows]
    # like tabulate: a header gets at least 2 characters of padding
    widths = [max([len(h) + 2] + [len(r[i]) for r in cells if i < len(r)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        pairs = itertools.zip_longest(values, widths, fillvalue="")
        padded = [v.center(w) if align == "center" else v.ljust(w) for v, w in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join((":" + "-" * w + ":") if align == "center" else (":" + "-" * (w + 1)) for w in widths) + "|"
    return "\n".join([line(headers), rule] + [line(r) for r in cells])


def create_small_table(small_dict: Mapping[str, Any]) -> str:
    """One header row of keys, one row of values: ``{"AP": 41.5, "AP50": 60.7}`` -> a 2-line table."""
    return pipe_table(list(small_dict.keys()), [list(small_dict.values())], align="center")


def per_category_table(results_per_category: Sequence[tuple[str, float]], max_cols: int = 6) -> str:
    """(name, AP) pairs laid out in up to ``max_cols // 2`` pairs of columns, as upstream logs them."""
    n_cols = min(max_cols, len(results_per_category) * 2)
    flat = list(itertools.chain(*results_per_category))
    rows = list(itertools.zip_longest(*[flat[i::n_cols] for i in range(n_cols)]))
    return pipe_table(["category", "AP"] * (n_cols // 2), rows, align="left")
