"""A run: a new folder under runs/, each selected notebook executed into it, then the report."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

from .execute import execute_notebook
from .report import write_summary
from .results import RunSummary
from .select import NOTEBOOKS_DIR, REPO_ROOT, plan_parameters, resolve_notebooks, stale_pair

RUNS_DIR = REPO_ROOT / "runs"


def new_run_dir(runs_dir: Path | str = RUNS_DIR) -> Path:
    """Create runs/<YYYYmmdd-HHMMSS>[-n]/; mkdir without exist_ok makes it unique even between processes.

    A `runs_dir` that is a file, lies under a file, loops or cannot be written is refused first (BadValue,
    a ValueError naming it)."""
    from workbench.checks import check_writable_dir

    runs_dir = check_writable_dir(runs_dir, "runs folder (--runs-dir)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(10_000):
        path = runs_dir / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {runs_dir}")


def run_notebooks(notebooks: Sequence[str] | None = None, quick: bool = False, params: dict | None = None,
                  runs_dir: Path | str | None = None, progress: bool = True,
                  notebooks_dir: Path | str | None = None, timeout: float | None = None) -> RunSummary:
    """Execute notebooks headlessly into a new run folder and write summary.md/.html/.json there.

    notebooks: stems, numbers or paths (None -> every NN_*.ipynb in notebooks_dir, in order).
    params: overrides; each goes to the selected notebooks whose parameters cell declares it.
    timeout: seconds allowed per cell (None: no limit).
    Bad input (unknown notebook or parameter, a runs folder or WORKBENCH_CACHE that cannot be written)
    raises before anything runs; a notebook that fails does not stop the others (see RunSummary.ok /
    .failures). A file that cannot be written for want of room raises WriteError naming it (after the
    report of what finished, when that can still be written).
    """
    from workbench.studies.kit.cache import cache_root

    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    paths = resolve_notebooks(notebooks, notebooks_dir)
    plan = plan_parameters(paths, params, quick)
    cache_root()  # a bad WORKBENCH_CACHE is refused now; a relative one is exported absolute for the kernels
    run_dir = new_run_dir(runs_dir if runs_dir is not None else RUNS_DIR).resolve()
    summary = RunSummary(run_dir, [], run_dir / "summary.md", run_dir / "summary.html", quick=bool(quick),
                         params=dict(params or {}))
    t0 = time.perf_counter()
    try:
        for i, path in enumerate(paths, start=1):
            out = run_dir / path.stem
            _say(progress, f"[{i}/{len(paths)}] {path.stem} -> {out}")
            if stale_pair(path):
                print(f"warning: {path.name} differs from {path.with_suffix('.py').name}; running the ipynb "
                      f"(sync them with `jupytext --sync {path.with_suffix('.py')}`)", file=sys.stderr)
            nb_params = {"output_dir": str(out), "quick": bool(quick), **plan[path]}
            res = execute_notebook(path, out, nb_params, cwd=path.parent, progress=progress, timeout=timeout)
            summary.results.append(res)
            _say(progress, f"    {res.status} in {res.seconds:.1f} s" + (f": {res.error}" if res.error else ""))
    finally:  # an interrupted run still leaves a report of what finished
        summary.seconds = time.perf_counter() - t0
        write_summary(summary)
    return summary


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, flush=True)
