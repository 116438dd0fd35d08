"""Headless notebook runs: papermill executes notebooks into a new run folder and a report gathers them.

    summary = run_notebooks(["00", "01_cam_counterfactual_masking"], quick=True, params={"seed": 1})
    summary.ok, summary.run_dir, summary.summary_html

Layout of one run (nothing earlier is ever overwritten: every run gets a new folder):

    runs/<YYYYmmdd-HHMMSS>[-n]/
      summary.md  summary.html  summary.json
      <stem>/<stem>.ipynb          the executed copy, with outputs
      <stem>/<stem>.html           the same rendered by nbconvert (what the report links)
      <stem>/result.json           written by the study (workbench.studies.kit.Result.write)
      <stem>/figures/*.png         written by save_figure

Each notebook gets the parameters `output_dir` (absolute path of its folder, as str) and `quick`
(bool), plus any overrides that its `parameters` cell declares. The kernel is always ipykernel on the
interpreter running this code (the venv's), whatever kernelspecs are registered elsewhere.
"""
from __future__ import annotations

import ast
import functools
import html
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
RUNS_DIR = REPO_ROOT / "runs"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
RESERVED = {"output_dir": "set by the runner to each notebook's folder",
            "quick": "use --quick (run_notebooks(quick=True))"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class NotebookResult:
    """How one notebook went. `failed_cell` counts the notebook's own cells (markdown too) from 1."""

    name: str
    status: str  # "ok" | "failed"
    seconds: float
    output_dir: Path
    result: dict | None = None  # the study's result.json, if it wrote one
    error: str | None = None  # "cell 3 (`x = 1 / 0`): ZeroDivisionError: division by zero"
    failed_cell: int | None = None
    traceback: str | None = None
    figures: list[Path] = field(default_factory=list)  # png files under output_dir/figures
    parameters: dict = field(default_factory=dict)

    @property
    def executed(self) -> Path:
        """The executed copy of the notebook (with outputs)."""
        return self.output_dir / f"{self.name}.ipynb"


@dataclass
class RunSummary:
    run_dir: Path
    results: list[NotebookResult]
    summary_md: Path
    summary_html: Path
    quick: bool = False
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "ok" for r in self.results)

    @property
    def failures(self) -> list[NotebookResult]:
        return [r for r in self.results if r.status != "ok"]

    def verdict(self) -> str:
        """One line: how many notebooks passed, which failed, where the report is."""
        n_ok = len(self.results) - len(self.failures)
        head = f"{'OK' if self.ok else 'FAILED'}: {n_ok}/{len(self.results)} notebooks ok in {self.seconds:.1f} s"
        failed = ", ".join(r.name for r in self.failures)
        return head + (f" (failed: {failed})" if failed else "") + f" -> {self.summary_md}"


# ---------------------------------------------------------------- selecting notebooks and parameters

def available_notebooks(notebooks_dir: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """The study notebooks (NN_*.ipynb) in `notebooks_dir`, in number order."""
    return sorted(p.resolve() for p in Path(notebooks_dir).glob(NOTEBOOK_GLOB))


def resolve_notebooks(names: Sequence[str] | None, notebooks_dir: Path | str = NOTEBOOKS_DIR) -> list[Path]:
    """Turn stems ("00_world_and_model"), numbers ("00") or paths into notebook files.

    No names -> every NN_*.ipynb in order. Unknown names raise one FileNotFoundError naming all of
    them and listing the available notebooks; a number matching two notebooks raises ValueError.
    """
    available = available_notebooks(notebooks_dir)
    if not names:
        if not available:
            raise FileNotFoundError(f"no notebooks to run: {notebooks_dir} holds no NN_*.ipynb")
        return available
    found: list[Path] = []
    unknown: list[str] = []
    for name in names:
        path = _match_notebook(str(name), available)
        if path is None:
            unknown.append(str(name))
        elif path not in found:
            found.append(path)
    if unknown:
        listing = ", ".join(p.stem for p in available) or f"none ({notebooks_dir} holds no NN_*.ipynb)"
        raise FileNotFoundError(
            f"no such notebook: {', '.join(map(repr, unknown))}; available: {listing} "
            f"(give a stem, its number, or a path to an .ipynb)")
    stems = [p.stem for p in found]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ValueError(f"two selected notebooks share the name {', '.join(clash)}: their output folders "
                         f"would collide; run them separately")
    return found


def _match_notebook(name: str, available: list[Path]) -> Path | None:
    path = Path(name)
    if path.suffix in (".ipynb", ".py") and path.exists():
        ipynb = path.with_suffix(".ipynb")  # a py:percent file runs through its paired ipynb
        if not ipynb.exists():
            raise FileNotFoundError(f"{name} has no paired {ipynb.name}; make it with "
                                    f"`jupytext --to ipynb {name}`")
        return ipynb.resolve()
    stem = path.name.removesuffix(".ipynb").removesuffix(".py")
    for p in available:
        if p.stem == stem:
            return p
    if stem.isdigit():
        hits = [p for p in available if int(p.stem.split("_", 1)[0]) == int(stem)]
        if len(hits) > 1:
            raise ValueError(f"notebook number {name!r} is ambiguous: {', '.join(p.stem for p in hits)}")
        return hits[0] if hits else None
    return None


def parse_value(text: str, name: str = "VALUE") -> Any:
    """A -p VALUE: a Python literal if it parses as one ("3", "0.5", "True", "(8, 32)"), else the string.

    Text that opens like a literal container or a quoted string but does not parse ("[1, 2") is an
    error naming the parameter, not a string passed on.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        if text.strip()[:1] in ("(", "[", "{", "'", '"'):
            raise ValueError(f"-p {name} {text!r} is not a valid Python literal ({type(e).__name__}: {e}); "
                             "write e.g. \"(1, 2)\", \"[1, 2]\", \"{'a': 1}\" or \"'text'\"") from None
        return text


def _kind(value: Any) -> str:
    """The kind a parameter's value is checked as: bool, int, float, str, sequence, dict, none, other."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    for kind, types in (("int", int), ("float", float), ("str", str), ("sequence", (list, tuple, set, frozenset)),
                        ("dict", dict)):
        if isinstance(value, types):
            return kind
    return "other"


ACCEPTS = {"bool": {"bool"}, "int": {"int"}, "float": {"float", "int"}, "str": {"str"},
           "sequence": {"sequence"}, "dict": {"dict"}}


def check_parameter(notebook: str, name: str, value: Any, default_source: str) -> None:
    """A ValueError naming the parameter, the value and the expected type when `value` cannot stand
    where the parameters cell has `default_source`; a default of None takes any value."""
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):
        return  # not a literal default: nothing to check against
    want = _kind(default)
    if want in ("none", "other") or value is None or _kind(value) in ACCEPTS[want]:
        return
    raise ValueError(f"-p {name} {value!r}: {notebook} expects {want.replace('sequence', 'a tuple or list')} "
                     f"(its parameters cell has {name} = {default_source}), got {type(value).__name__}")


def notebook_parameters(path: Path) -> dict[str, dict]:
    """The names declared in a notebook's `parameters` cell -> papermill's {default, inferred_type_name, ...}."""
    import papermill

    try:
        return papermill.inspect_notebook(str(path))
    except Exception as e:  # a notebook without kernelspec metadata cannot be inspected by name
        raise ValueError(f"cannot read the parameters cell of {path}: {type(e).__name__}: {e}") from None


def plan_parameters(notebooks: Sequence[Path], params: dict | None) -> dict[Path, dict]:
    """Which overrides go to which notebook; a name no selected notebook declares is an error."""
    params = dict(params or {})
    for name in params:
        if name in RESERVED:
            raise ValueError(f"parameter {name!r} cannot be overridden: {RESERVED[name]}")
    declared = {nb: notebook_parameters(nb) for nb in notebooks} if params else {nb: {} for nb in notebooks}
    for name in params:
        if not any(name in d for d in declared.values()):
            accepted = "; ".join(f"{nb.stem}: {', '.join(k for k in d if k not in RESERVED) or '(none)'}"
                                 for nb, d in declared.items())
            raise ValueError(f"unknown parameter {name!r}: no selected notebook declares it in its parameters "
                             f"cell. Accepted parameters -> {accepted}")
    for nb, d in declared.items():
        for name, value in params.items():
            if name in d:
                check_parameter(nb.stem, name, value, str(d[name].get("default")))
    return {nb: {k: v for k, v in params.items() if k in declared[nb]} for nb in notebooks}


def new_run_dir(runs_dir: Path | str = RUNS_DIR) -> Path:
    """Create runs/<YYYYmmdd-HHMMSS>[-n]/; mkdir without exist_ok makes it unique even between processes."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(10_000):
        path = runs_dir / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {runs_dir}")


def stale_pair(ipynb: Path) -> bool:
    """True when the paired py:percent file exists and its cells differ from the ipynb's."""
    py = ipynb.with_suffix(".py")
    if not py.exists():
        return False
    import jupytext

    def cells(path: Path) -> list[tuple[str, str]]:
        nb = jupytext.read(path)
        return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type in ("code", "markdown")]

    return cells(ipynb) != cells(py)


# ---------------------------------------------------------------- executing

@functools.cache
def _kernel_manager_class():
    """An AsyncKernelManager that starts ipykernel on sys.executable, never a kernelspec found elsewhere.

    With no kernel folders, jupyter_client falls back to ipykernel's built-in spec, whose argv is the
    running interpreter; so `.venv/bin/workbench` works without any registered kernel, and a user-level
    "python3" kernelspec pointing at another Python cannot hijack the run. Transport encryption is
    provisioned when pyzmq supports it (silences ipykernel's plain-TCP warning).
    """
    import zmq
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self):
            return KernelSpecManager(kernel_dirs=[])

        @default("transport_encryption")
        def _default_transport_encryption(self):
            return "auto" if zmq.has("curve") else "disabled"

    return ThisPythonKernelManager


class _SetLiteral(list):
    """A set parameter on its way into a notebook: a list to JSON (papermill records parameters in the
    notebook's metadata), a set literal to the injected cell."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return _SetLiteral(sorted(value, key=repr))
    if isinstance(value, tuple):
        return tuple(_json_safe(v) for v in value)
    return value


@functools.cache
def _register_translator() -> None:
    """papermill writes a tuple or a set as its string; ours writes them as tuples and sets."""
    from papermill.translators import PythonTranslator, papermill_translators

    class Translator(PythonTranslator):
        @classmethod
        def translate(cls, val):
            if isinstance(val, _SetLiteral):
                return "{" + ", ".join(cls.translate(v) for v in val) + "}" if val else "set()"
            if isinstance(val, tuple):
                inner = ", ".join(cls.translate(v) for v in val)
                return f"({inner}{',' if len(val) == 1 else ''})"
            return super().translate(val)

    papermill_translators.register("python", Translator)


def execute_notebook(path: Path, out_dir: Path, parameters: dict, cwd: Path, progress: bool = True,
                     timeout: float | None = None) -> NotebookResult:
    """Run one notebook with papermill into out_dir/<stem>.ipynb; a failure is returned, not raised."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from workbench.studies.kit.cells import HEADLESS_ENV, STATIC_ENV

    _register_translator()

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{path.stem}.ipynb"
    res = NotebookResult(path.stem, "ok", 0.0, out_dir, parameters=dict(parameters))
    t0 = time.perf_counter()
    saved = {k: os.environ.get(k) for k in (HEADLESS_ENV, STATIC_ENV)}
    if progress:  # the kernel inherits it: the study kit then prints a line per finished cell to this terminal
        os.environ[HEADLESS_ENV] = "1"
    os.environ[STATIC_ENV] = "1"  # no bars in the outputs; explorers show a picture of their first state
    try:
        papermill.execute_notebook(
            str(path), str(executed), parameters={k: _json_safe(v) for k, v in parameters.items()},
            kernel_name="python3", language="python",
            cwd=str(cwd), progress_bar=progress, execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(), shutdown_kernel="immediate")
    except PapermillExecutionError as e:
        res.status = "failed"
        res.failed_cell, count = _failed_cell(executed)
        first = next((ln.strip() for ln in e.source.splitlines() if ln.strip()), "")
        first = first if len(first) <= 80 else first[:77] + "..."
        where = f"cell {res.failed_cell}" if res.failed_cell else "the injected parameters cell"
        if count is not None:  # the traceback's "Cell In[n]" counts executed code cells, the injected one too
            where += f" (In[{count}] in its traceback)"
        res.error = f"{where} (`{first}`): {e.ename}: {e.evalue}".rstrip(": ")
        res.traceback = _ANSI.sub("", "\n".join(e.traceback))
    except Exception as e:  # kernel died, timeout, unreadable notebook: still a per-notebook failure
        res.status = "failed"
        res.error = f"{type(e).__name__}: {e}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    res.seconds = time.perf_counter() - t0
    if executed.exists():
        render_notebook_html(executed)
    res.result = _read_result(out_dir, res)
    res.figures = sorted((out_dir / "figures").glob("*.png"))
    return res


def _failed_cell(executed: Path) -> tuple[int | None, int | None]:
    """(1-based position of the failed cell among the notebook's own cells -- papermill adds some --,
    its execution count: the n of "Cell In[n]" in the traceback)."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except Exception:
        return None, None
    added = {"injected-parameters", "papermill-error-cell-tag"}
    own = [c for c in nb.cells if not added & set(c.get("metadata", {}).get("tags", []))]
    for i, cell in enumerate(own, start=1):
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            return i, cell.get("execution_count")
    return None, None


def _read_result(out_dir: Path, res: NotebookResult) -> dict | None:
    path = out_dir / "result.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        res.status = "failed"
        res.error = (res.error + "; " if res.error else "") + f"unreadable result.json: {e}"
        return None


def run_notebooks(notebooks: Sequence[str] | None = None, quick: bool = False, params: dict | None = None,
                  runs_dir: Path | str | None = None, progress: bool = True,
                  notebooks_dir: Path | str | None = None, timeout: float | None = None) -> RunSummary:
    """Execute notebooks headlessly into a new run folder and write summary.md/.html/.json there.

    notebooks: stems, numbers or paths (None -> every NN_*.ipynb in notebooks_dir, in order).
    params: overrides; each goes to the selected notebooks whose parameters cell declares it.
    timeout: seconds allowed per cell (None: no limit).
    Bad input (unknown notebook or parameter) raises before anything runs; a notebook that fails
    does not stop the others (see RunSummary.ok / .failures).
    """
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOKS_DIR
    paths = resolve_notebooks(notebooks, notebooks_dir)
    plan = plan_parameters(paths, params)
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


# ---------------------------------------------------------------- the report
#
# summary.html is a results section: per study, first the question (the notebook's **Question.**
# paragraph), the headline finding (result.json's "headline") in a box, the main table (percent,
# mean ± std [95% interval]) and the main figures with their captions; then, folded away, the
# whole findings, every other table, the per-seed rows, the metrics and every figure. The top of
# the page links each study's rendered notebook (<stem>.html, via nbconvert) and its result.json.

def write_summary(summary: RunSummary) -> None:
    """Write summary.md, summary.html and summary.json into the run folder (atomically)."""
    _write_atomic(summary.summary_md, render_markdown(summary))
    _write_atomic(summary.summary_html, render_html(summary))
    _write_atomic(summary.run_dir / "summary.json", json.dumps({
        "ok": summary.ok, "quick": summary.quick, "params": summary.params, "seconds": round(summary.seconds, 2),
        "notebooks": [{"name": r.name, "status": r.status, "seconds": round(r.seconds, 2),
                       "output_dir": str(r.output_dir), "error": r.error, "failed_cell": r.failed_cell,
                       "parameters": r.parameters, "metrics": (r.result or {}).get("metrics"),
                       "headline": (r.result or {}).get("headline")}
                      for r in summary.results]}, indent=1, default=str))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_notebook_html(executed: Path) -> Path | None:
    """The executed notebook as <stem>.html beside it (nbconvert's lab template), or None if it fails.

    Saved widget state is dropped first: the page would need the widget manager from a CDN to draw
    it, and explorers already show a static picture of their first state (`workbench.viz.explorer`).
    """
    import nbformat
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(executed, as_version=4)
        nb.metadata.pop("widgets", None)
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    except Exception as e:  # a report without the page is still a report
        print(f"warning: could not render {executed.name} as HTML: {type(e).__name__}: {e}", file=sys.stderr)
        return None
    out = executed.with_suffix(".html")
    _write_atomic(out, body)
    return out


def _fmt(value: Any) -> str:
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
    """A table as the report shows it: `cells` are already formatted text."""

    columns: list[str]
    cells: list[list[str]]
    legend: str = ""  # what the cells mean ("mean ± std over seeds [95% interval]")


def _number(value: Any, percent: bool) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _fmt(value)
    if percent:
        return f"{100 * value:.1f}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def shown_table(table: Any, percent: Sequence[str] = ()) -> Shown:
    """Format a result.json table for reading: a metric `m` with `m_std` (and `m_ci` = [lo, hi]) columns
    becomes one column "m" reading "74.0 ± 0.3 [73.6, 74.4]"; metrics named in `percent` (fractions) are
    shown in percent (the header says "%"); a "label" column replaces a "method" column (ids stay in
    result.json); lists longer than 8 entries become "(n entries)"."""
    columns, rows = table_rows(table)
    if "label" in columns and "method" in columns:
        j = columns.index("method")
        columns = [c for c in columns if c != "method"]
        rows = [row[:j] + row[j + 1:] for row in rows]
        columns[columns.index("label")] = "method"
    pct = set(percent)
    merged = {c for c in columns for suffix in ("_std", "_ci") if c.endswith(suffix) and c[:-len(suffix)] in columns}
    out_cols, cells = [], [[] for _ in rows]
    for j, c in enumerate(columns):
        if c in merged:
            continue
        std_j = columns.index(f"{c}_std") if f"{c}_std" in columns else None
        ci_j = columns.index(f"{c}_ci") if f"{c}_ci" in columns else None
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
                text += f" [{_number(ci[0], c in pct)}, {_number(ci[1], c in pct)}]"
            cells[i].append(text)
    return Shown(out_cols, cells, _legend(columns, merged))


def _legend(columns: list[str], merged: set[str]) -> str:
    """What a shown table's cells mean, said once under it."""
    if any(c.endswith("_ci") for c in merged):
        return "cells: mean ± std over seeds [95% interval of the mean]; % = accuracy in percent"
    if merged:
        return "cells: mean ± std over seeds; % = in percent"
    return ""


def per_seed_rows(rows: Sequence[dict]) -> list[dict]:
    """result.json's per-cell rows without their long lists (histories, per-item values)."""
    return [{k: v for k, v in r.items() if not (isinstance(v, (list, dict)) and (len(v) > 8 or k.endswith("_items")))
             and not k.endswith("_items")} for r in rows]


_QUESTION = re.compile(r"\*\*Question\.?\*\*\s*(.+)", re.S)


def notebook_question(notebook: Path) -> str:
    """The notebook's "**Question.** ..." paragraph (in its first markdown cells) as plain text, continued
    up to the paragraph that asks (ends in "?") when the first one only sets it up; display maths is
    left out; "" if the notebook has none."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:
        return ""
    for cell in nb.cells[:4]:
        m = _QUESTION.search(cell.source) if cell.cell_type == "markdown" else None
        if not m:
            continue
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", m.group(1)) if p.strip()]
        kept: list[str] = []
        for p in paragraphs[:5]:
            if p.startswith("$$") or (kept and p.startswith("**") and not p.startswith("**Does")
                                      and "?" not in p):
                continue
            kept.append(p)
            if "?" in p:
                break
        else:
            kept = kept[:1]
        text = re.sub(r":\s+where [^.]*\.", ".", " ".join(" ".join(kept).split()))  # a left-out formula's gloss
        return re.sub(r"\*\*|(?<!\w)\*|\*(?!\w)", "", text)
    return ""


def headline_of(result: dict) -> str:
    """The study's headline; without one, the first two sentences of its findings."""
    if result.get("headline"):
        return str(result["headline"]).strip()
    sentences = re.split(r"(?<=[.!?])\s+", str(result.get("findings") or "").strip())
    return " ".join(sentences[:2])


def main_table_name(result: dict) -> str | None:
    tables = result.get("tables") or {}
    name = result.get("main_table")
    return name if name in tables else next(iter(tables), None)


@dataclass
class Figure:
    path: Path
    caption: str
    main: bool


def figures_of(r: NotebookResult) -> list[Figure]:
    """The notebook's figures in the order it saved them, with the captions it gave (file name else);
    without a caption marked main, the first figure is the main one."""
    info = (r.result or {}).get("figure_captions") or {}
    if not info:
        try:
            info = json.loads((r.output_dir / "figures" / "captions.json").read_text())
        except (OSError, json.JSONDecodeError):
            info = {}
    files = sorted(r.figures, key=lambda p: (info.get(p.stem, {}).get("order", len(info)), p.stem))
    figs = [Figure(p, info.get(p.stem, {}).get("caption") or p.stem, bool(info.get(p.stem, {}).get("main")))
            for p in files]
    if figs and not any(f.main for f in figs):
        figs[0].main = True
    return figs


def _rel(path: Path, run_dir: Path) -> str:
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        return path.as_posix()


def _md_cell(value: Any) -> str:
    return (value if isinstance(value, str) else _fmt(value)).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows] + [""]


def _headline(summary: RunSummary) -> str:
    n_ok = len(summary.results) - len(summary.failures)
    params = ", ".join(f"{k}={v!r}" for k, v in summary.params.items()) or "none"
    return (f"{n_ok} of {len(summary.results)} notebooks ok · quick={summary.quick} · "
            f"overrides: {params} · {summary.seconds:.1f} s")


def _links(r: NotebookResult) -> list[tuple[str, Path]]:
    """(label, file) of what a study's section links: rendered notebook, result.json, the .ipynb."""
    out = []
    if r.executed.with_suffix(".html").exists():
        out.append(("notebook (HTML)", r.executed.with_suffix(".html")))
    if (r.output_dir / "result.json").exists():
        out.append(("result.json", r.output_dir / "result.json"))
    out.append(("executed .ipynb", r.executed))
    return out


def render_markdown(summary: RunSummary) -> str:
    """The run report as Markdown (figures linked by paths relative to the run folder)."""
    run = summary.run_dir
    lines = [f"# workbench run {run.name}", "", _headline(summary), ""]
    lines += _md_table(["notebook", "status", "seconds", "study", "links"],
                       [[r.name, r.status, f"{r.seconds:.1f}", (r.result or {}).get("study"),
                         " · ".join(f"[{label}]({_rel(p, run)})" for label, p in _links(r))]
                        for r in summary.results])
    for r in summary.results:
        lines += [f"## {r.name}: {r.status} ({r.seconds:.1f} s)", ""]
        res = r.result or {}
        question = notebook_question(r.executed if r.executed.exists() else Path())
        if question:
            lines += [f"**Question.** {question}", ""]
        if r.error:
            lines += [f"**Failed in {r.error}**", ""]
        if r.traceback:
            lines += ["```", *r.traceback.strip().splitlines()[-15:], "```", ""]
        if headline_of(res):
            lines += [f"> **Finding.** {headline_of(res)}", ""]
        main = main_table_name(res)
        percent = res.get("percent") or ()
        if main:
            t = shown_table(res["tables"][main], percent)
            lines += [f"### {main}", "", *_md_table(t.columns, t.cells)] + ([f"*{t.legend}*", ""] if t.legend else [])
        figs = figures_of(r)
        for f in (f for f in figs if f.main):
            lines += [f"![{f.path.stem}]({_rel(f.path, run)})", "", f"*{f.caption}*", ""]
        lines += ["### Details", ""]
        if res.get("findings"):
            lines += ["**Findings.** " + str(res["findings"]).strip(), ""]
        for name, table in (res.get("tables") or {}).items():
            if name != main:
                t = shown_table(table, percent)
                lines += [f"#### {name}", "", *_md_table(t.columns, t.cells)]
        if res.get("rows"):
            t = shown_table(per_seed_rows(res["rows"]), percent)
            lines += ["#### per-seed rows", "", *_md_table(t.columns, t.cells)]
        metrics = flatten_metrics(res.get("metrics") or {})
        if metrics:
            lines += ["#### Metrics", "", *_md_table(["metric", "value"], [list(m) for m in metrics])]
        for f in (f for f in figs if not f.main):
            lines += [f"![{f.path.stem}]({_rel(f.path, run)})", "", f"*{f.caption}*", ""]
        if r.result is None and r.status == "ok":
            lines += ["(no result.json written)", ""]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222;"
        "line-height:1.4}table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;"
        "padding:2px 7px;text-align:left;font-size:.88em}th{background:#f3f3f3}td.n{text-align:right;"
        "font-variant-numeric:tabular-nums;white-space:nowrap}.ok{color:#197a19}.failed{color:#b00020}"
        "pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}img{max-width:100%;"
        "border:1px solid #ddd}figure{margin:.6em 0}figcaption{font-size:.88em;color:#444;max-width:900px}"
        ".legend{font-size:.8em;color:#555;margin-top:-.8em}"
        ".question{color:#333}.finding{border-left:5px solid #2c7fb8;background:#eef5fb;padding:.5em .9em;"
        "margin:.6em 0;font-size:1.05em}.links a{margin-right:1em}details{margin:1em 0}summary{cursor:pointer;"
        "font-weight:600}section{border-top:2px solid #ddd;margin-top:1.5em}.main-figs{display:flex;"
        "flex-wrap:wrap;gap:1em;align-items:flex-start}.main-figs figure{flex:1 1 420px}")


def _html_table(columns: list[str], rows: list[list[Any]], raw_first: bool = False) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)

    def td(j: int, v: Any) -> str:
        text = v if isinstance(v, str) else _fmt(v)
        numeric = bool(re.match(r"^[-+]?\d", text))
        return f"<td{' class=n' if numeric else ''}>{text if raw_first and j == 0 else esc(text)}</td>"

    body = "".join("<tr>" + "".join(td(j, v) for j, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_figure(f: Figure, run: Path) -> str:
    esc = html.escape
    return (f"<figure><img src='{esc(_rel(f.path, run))}' alt='{esc(f.path.stem)}'>"
            f"<figcaption><b>{esc(f.path.stem)}.</b> {esc(f.caption) if f.caption != f.path.stem else ''}"
            "</figcaption></figure>")


def _html_section(r: NotebookResult, run: Path) -> list[str]:
    esc = html.escape
    res = r.result or {}
    links = " ".join(f"<a href='{esc(_rel(p, run))}'>{esc(label)}</a>" for label, p in _links(r))
    parts = [f"<section><h2 id='{esc(r.name)}'>{esc(r.name)}: <span class='{esc(r.status)}'>{esc(r.status)}</span>"
             f" <small>({r.seconds:.1f} s)</small></h2><p class='links'>{links}</p>"]
    question = notebook_question(r.executed) if r.executed.exists() else ""
    if question:
        parts.append(f"<p class='question'><b>Question.</b> {esc(question)}</p>")
    if r.error:
        parts.append(f"<p class='failed'><b>Failed in {esc(r.error)}</b></p>")
    if r.traceback:
        parts.append("<pre>" + esc("\n".join(r.traceback.strip().splitlines()[-15:])) + "</pre>")
    if headline_of(res):
        parts.append(f"<p class='finding'><b>Finding.</b> {esc(headline_of(res))}</p>")
    main, percent = main_table_name(res), res.get("percent") or ()
    if main:
        t = shown_table(res["tables"][main], percent)
        parts += [f"<h3>{esc(str(main))}</h3>", _html_table(t.columns, t.cells)]
        if t.legend:
            parts.append(f"<p class='legend'>{esc(t.legend)}</p>")
    figs = figures_of(r)
    if any(f.main for f in figs):
        parts.append("<div class='main-figs'>" + "".join(_html_figure(f, run) for f in figs if f.main) + "</div>")
    details = []
    if res.get("findings"):
        details.append(f"<p><b>Findings.</b> {esc(str(res['findings']).strip())}</p>")
    for name, table in (res.get("tables") or {}).items():
        if name != main:
            t = shown_table(table, percent)
            details += [f"<h4>{esc(str(name))}</h4>", _html_table(t.columns, t.cells)]
    if res.get("rows"):
        t = shown_table(per_seed_rows(res["rows"]), percent)
        details += [f"<h4>per-seed rows ({len(res['rows'])})</h4>", _html_table(t.columns, t.cells)]
    metrics = flatten_metrics(res.get("metrics") or {})
    if metrics:
        details += ["<h4>Metrics</h4>", _html_table(["metric", "value"], [list(m) for m in metrics])]
    details += [_html_figure(f, run) for f in figs if not f.main]
    if details:
        parts.append("<details><summary>Details: the whole findings, every table, per-seed rows, metrics, "
                     f"all figures ({len(figs)})</summary>" + "".join(details) + "</details>")
    if r.result is None and r.status == "ok":
        parts.append("<p>(no result.json written)</p>")
    return parts + ["</section>"]


def render_html(summary: RunSummary) -> str:
    """The run report as one HTML page that opens from disk (images by relative path)."""
    esc, run = html.escape, summary.run_dir
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>workbench run {esc(run.name)}"
             f"</title><style>{_CSS}</style></head><body>", f"<h1>workbench run {esc(run.name)}</h1>",
             f"<p>{esc(_headline(summary))}</p>"]
    overview = [[f"<a href='#{esc(r.name)}'>{esc(r.name)}</a>", r.status, f"{r.seconds:.1f}",
                 (r.result or {}).get("study"),
                 " · ".join(f"<a href='{esc(_rel(p, run))}'>{esc(label)}</a>" for label, p in _links(r))]
                for r in summary.results]
    head = "".join(f"<th>{c}</th>" for c in ("notebook", "status", "seconds", "study", "open"))
    rows = "".join("<tr>" + "".join(f"<td>{v if j in (0, 4) else esc(_fmt(v))}</td>" for j, v in enumerate(row))
                   + "</tr>" for row in overview)
    parts.append(f"<table><tr>{head}</tr>{rows}</table>")
    for r in summary.results:
        parts += _html_section(r, run)
    parts.append("</body></html>")
    return "\n".join(parts)
