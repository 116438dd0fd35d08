"""Executing one notebook with papermill, on this interpreter's ipykernel, into its output folder.

A failure is returned (`NotebookResult.status == "failed"`, with the cell and the exception), never
raised; the executed copy is then rendered as HTML beside it (nbconvert) for the report to link.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .results import NotebookResult

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
    """Run one notebook with papermill into out_dir/<stem>.ipynb; a failure is returned, not raised.

    papermill writes the executed copy (after each cell) to a temporary name beside it, renamed into
    place when it stops; a write that fails for want of room (a full disk, a file-size limit) removes
    that copy and raises WriteError naming the notebook."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from workbench.checks import DISK_ERRNOS, temp_beside, write_error
    from workbench.studies.kit.cells import HEADLESS_ENV, STATIC_ENV

    _register_translator()

    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{path.stem}.ipynb"
    writing = temp_beside(executed, suffix=".ipynb")  # renamed over `executed` when papermill stops
    res = NotebookResult(path.stem, "ok", 0.0, out_dir, parameters=dict(parameters))
    t0 = time.perf_counter()
    saved = {k: os.environ.get(k) for k in (HEADLESS_ENV, STATIC_ENV)}
    if progress:  # the kernel inherits it: the study kit then prints a line per finished cell to this terminal
        os.environ[HEADLESS_ENV] = "1"
    os.environ[STATIC_ENV] = "1"  # no bars in the outputs; explorers show a picture of their first state
    try:
        papermill.execute_notebook(
            str(path), str(writing), parameters={k: _json_safe(v) for k, v in parameters.items()},
            kernel_name="python3", language="python",
            cwd=str(cwd), progress_bar=progress, execution_timeout=timeout,
            kernel_manager_class=_kernel_manager_class(), shutdown_kernel="immediate")
    except PapermillExecutionError as e:
        res.status = "failed"
        res.failed_cell, count = _failed_cell(writing)
        first = next((ln.strip() for ln in e.source.splitlines() if ln.strip()), "")
        first = first if len(first) <= 80 else first[:77] + "..."
        where = f"cell {res.failed_cell}" if res.failed_cell else "the injected parameters cell"
        if count is not None:  # the traceback's "Cell In[n]" counts executed code cells, the injected one too
            where += f" (In[{count}] in its traceback)"
        res.error = f"{where} (`{first}`): {e.ename}: {e.evalue}".rstrip(": ")
        res.traceback = _ANSI.sub("", "\n".join(e.traceback))
    except Exception as e:  # kernel died, timeout, unreadable notebook: still a per-notebook failure
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:  # a full disk: the copy may be half-written
            writing.unlink(missing_ok=True)  # so it goes, and the run stops (the next notebook would fail too)
            raise write_error(executed, e) from e
        res.status = "failed"
        res.error = f"{type(e).__name__}: {e}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if writing.exists():  # papermill's last save (it saves in a `finally` too): complete, so kept
            os.replace(writing, executed)
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
    write_text_atomic(out, body)
    return out
