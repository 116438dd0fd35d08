"""result.json tables made readable: merged mean ± std [interval] cells, percent, and a width that fits a page.

A cell of a `Shown` table is text; a "\n" in it separates lines (the HTML report breaks the line there,
Markdown joins the lines with a space).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

MAX_COLUMNS = 10  # a table wider than this is transposed (few rows) or split into blocks of columns
NAMING = ("", "method", "setting", "seed", "seeds", "model", "split", "name")  # columns that name a row


def fmt(value: Any) -> str:
    """A value as a report shows it outside a study table: 4 significant digits, "-" for None."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "-"
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def flatten_metrics(metrics: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested metric dicts -> [("a.b", value)]; long lists (histories) are summarised by their length."""
    if isinstance(metrics, dict):
        rows: list[tuple[str, Any]] = []
        for k, v in metrics.items():
            rows += flatten_metrics(v, f"{prefix}.{k}" if prefix else str(k))
        return rows
    if isinstance(metrics, (list, tuple)) and (len(metrics) > 8 or any(isinstance(v, (dict, list)) for v in metrics)):
        return [(prefix, f"({len(metrics)} entries)")]
    return [(prefix, metrics)]


def table_rows(table: Any) -> tuple[list[str], list[list[Any]]]:
    """A result.json table (list of row dicts, or a dict of name -> value/row) -> (columns, rows)."""
    if isinstance(table, dict):
        if all(isinstance(v, dict) for v in table.values()):
            table = [{"": k, **v} for k, v in table.items()]
        else:
            return ["name", "value"], [[k, v] for k, v in table.items()]
    if not isinstance(table, list):
        return ["value"], [[table]]
    rows = [r if isinstance(r, dict) else {"value": r} for r in table]
    columns: list[str] = []
    for r in rows:
        columns += [str(k) for k in r if str(k) not in columns]
    return columns, [[r.get(c) for c in columns] for r in rows]


@dataclass
class Shown:
    """A table as the report shows it: `cells` are already formatted text ("\n" between a cell's lines)."""

    columns: list[str]
    cells: list[list[str]]
    legend: str = ""  # what the cells mean ("mean ± std over seeds [95% interval]")
    keys: int = 1  # how many leading columns name a row (method, setting, seeds) rather than measure it


def _number(value: Any, percent: bool) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return fmt(value)
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def shown_table(table: Any, percent: Sequence[str] = ()) -> Shown:
    """Format a result.json table for reading: a metric `m` with `m_std` (and `m_ci` = [lo, hi]) columns
    becomes one column "m" reading "74.0 ± 0.3" over "[73.6, 74.4]" (two lines of one cell); metrics named
    in `percent` (fractions) are shown in percent (the header says "%"); a "label" column replaces a
    "method" column (ids stay in result.json); lists longer than 8 entries become "(n entries)"."""
    columns, rows = table_rows(table)
    if "label" in columns and "method" in columns:
        j = columns.index("method")
        columns = [c for c in columns if c != "method"]
        rows = [row[:j] + row[j + 1:] for row in rows]
        columns[columns.index("label")] = "method"
    pct = set(percent)
    merged = {c for c in columns for suffix in ("_std", "_ci") if c.endswith(suffix) and c[:-len(suffix)] in columns}
    out_cols, cells, keys = [], [[] for _ in rows], None
    for j, c in enumerate(columns):
        if c in merged:
            continue
        std_j = columns.index(f"{c}_std") if f"{c}_std" in columns else None
        ci_j = columns.index(f"{c}_ci") if f"{c}_ci" in columns else None
        if keys is None and (std_j is not None or ci_j is not None):
            keys = len(out_cols)  # the first measured column ends the row's name
        out_cols.append(c + (" %" if c in pct else ""))
        for i, row in enumerate(rows):
            v = row[j]
            if isinstance(v, (list, tuple)) and len(v) > 8:
                cells[i].append(f"({len(v)} entries)")
                continue
            text = _number(v, c in pct)
            if std_j is not None and isinstance(row[std_j], (int, float)):
                text += f" ± {_number(row[std_j], c in pct)}"
            ci = row[ci_j] if ci_j is not None else None
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
                text += f"\n[{_number(ci[0], c in pct)}, {_number(ci[1], c in pct)}]"
            cells[i].append(text)
    if keys is None:  # nothing merged: the leading columns that usually name a row
        keys = next((i for i, c in enumerate(out_cols) if c not in NAMING), len(out_cols))
    return Shown(out_cols, cells, _legend(columns, merged), max(1, keys))


def _legend(columns: list[str], merged: set[str]) -> str:
    """What a shown table's cells mean, said once under it."""
    if any(c.endswith("_ci") for c in merged):
        return "cells: mean ± std over seeds [95% interval of the mean]; % = accuracy in percent"
    if merged:
        return "cells: mean ± std over seeds; % = in percent"
    return ""


def fit(shown: Shown, max_columns: int = MAX_COLUMNS) -> list[Shown]:
    """A table no wider than `max_columns`: as it is when it fits; transposed (one column per row, a
    row per measured column) when it has few rows; else split into blocks of columns, each repeating
    the columns that name a row."""
    n_cols = len(shown.columns)
    if n_cols <= max_columns:
        return [shown]
    keys = min(shown.keys, n_cols - 1)
    if len(shown.cells) + 1 <= max_columns:
        heads = [_row_name(shown.columns[:keys], row[:keys]) for row in shown.cells]
        cells = [[c] + [row[j] for row in shown.cells] for j, c in enumerate(shown.columns) if j >= keys]
        return [Shown(["", *heads], cells, shown.legend, 1)]
    per = max(1, max_columns - keys)
    blocks = []
    for start in range(keys, n_cols, per):
        take = list(range(keys)) + list(range(start, min(start + per, n_cols)))
        blocks.append(Shown([shown.columns[j] for j in take], [[row[j] for j in take] for row in shown.cells],
                            "", keys))
    blocks[-1].legend = shown.legend
    return blocks


def _row_name(columns: list[str], values: list[str]) -> str:
    """A transposed table's column head: the row's first name, then its other names as "column value"."""
    rest = ", ".join(f"{c} {v}" for c, v in zip(columns[1:], values[1:]) if v not in ("", "-"))
    return values[0] + (f"\n{rest}" if rest else "")


def per_seed_rows(rows: Sequence[dict]) -> list[dict]:
    """result.json's per-cell rows without their long lists (histories, per-item values)."""
    return [{k: v for k, v in r.items() if not (isinstance(v, (list, dict)) and (len(v) > 8 or k.endswith("_items")))
             and not k.endswith("_items")} for r in rows]
