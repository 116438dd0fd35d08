"""The grid a study runs -- cells of method x setting x seed -- and the loop over it.

`run_cells` reads finished cells from the cache, computes the rest, shows progress (a tqdm bar
in the notebook, left in its final state; one line per finished cell on the terminal when the
runner executes the notebook headless, and no bar in the executed notebook's outputs), and
returns one row per cell: {"method", "setting", "seed", **metrics}.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from tqdm.auto import tqdm

from workbench.viz.explorer import STATIC_ENV, static_outputs

__all__ = ["HEADLESS_ENV", "STATIC_ENV", "Cell", "headless", "run_cells", "say"]

HEADLESS_ENV = "WORKBENCH_RUNNER"  # set by `workbench run`: progress lines go to the runner's terminal


def headless() -> bool:
    """True inside a notebook the runner executes (env `STATIC_ENV`): nobody watches its outputs live,
    so progress bars (widgets frozen at their first state once saved) stay out of them, and explorers
    draw a static picture of their first state (`workbench.viz.explorer`)."""
    return static_outputs()


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method at a setting (a rank, an alpha, or None) for one seed (or None)."""

    method: str
    setting: Any = None
    seed: int | None = None

    @property
    def id(self) -> str:
        parts = [self.method]
        if self.setting is not None:
            parts.append(f"r{self.setting}" if isinstance(self.setting, int) else str(self.setting))
        if self.seed is not None:
            parts.append(f"s{self.seed}")
        return "-".join(parts)

    def row(self, metrics: dict) -> dict:
        return {"method": self.method, "setting": self.setting, "seed": self.seed, **metrics}


def say(line: str) -> None:
    """A progress line for the runner's terminal, not for the notebook: in a kernel, `sys.stderr.fileno()`
    is the terminal's stderr that ipykernel keeps beside the stream it forwards into the cell's output."""
    if not os.environ.get(HEADLESS_ENV):
        return
    try:
        os.write(sys.stderr.fileno(), (line + "\n").encode())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        print(line, file=sys.__stderr__, flush=True)


def run_cells(cells: Sequence[Cell], compute: Callable[[Cell], dict], *, cache: Any = None,
              needs: Callable[[Cell], Iterable[Path]] | None = None, desc: str = "cells",
              progress: bool = True, done: Callable[[Cell, dict], None] | None = None,
              checkpoint_every: int = 0) -> list[dict]:
    """Every cell's row, from `cache` (a `CellCache`) when it holds the cell, else from `compute(cell)`
    (then cached).

    `needs(cell)`: files a cached cell is only valid with (kept weights, say); `done(cell, metrics)` is told
    every finished cell, cached or not. Rows carry "cached": True/False.

    With a cache that has `lock(cell)` (`CellCache`), "load, else compute and save" runs under the cell's
    lock: a second process on the same cell (another sweep, a notebook) waits, then reads the first's result.
    With `checkpoint_every` > 0, `compute(cell)` runs inside `cache.computing(cell, ...)`: the cell's training
    runs checkpoint every that many steps (`kit.checkpoint`), and a rerun of an interrupted cell resumes.
    """
    rows = []
    bar = tqdm(cells, desc=desc, disable=not progress or headless(), dynamic_ncols=True)
    for i, cell in enumerate(bar, 1):
        bar.set_postfix_str(cell.id)
        lock = getattr(cache, "lock", None)
        with lock(cell) if lock is not None else contextlib.nullcontext():  # one process computes a cell
            hit = cache.load(cell, needs(cell) if needs else ()) if cache is not None else None
            t0 = time.perf_counter()
            if hit is None:
                computing = getattr(cache, "computing", None)
                with computing(cell, checkpoint_every) if computing is not None else contextlib.nullcontext():
                    metrics = compute(cell)
                if cache is not None:
                    cache.save(cell, metrics)
            else:
                metrics = hit
        if done is not None:
            done(cell, metrics)
        seconds = time.perf_counter() - t0
        rows.append({**cell.row(metrics), "cached": hit is not None})
        if i == len(cells):
            bar.set_postfix_str("done")
        if progress:
            say(f"    {desc}: {i}/{len(cells)} {cell.id} " + ("(cached)" if hit is not None else f"({seconds:.1f} s)"))
    bar.close()
    return rows
