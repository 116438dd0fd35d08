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

The report opens with the claims ledger (each study's result.json `claims`: what the paper says,
our difference with its interval, the verdict), then one section per study; `workbench claims RUN`
prints the same ledger.

    select.py    which notebooks, which -p parameters (checked before anything runs)
    execute.py   one notebook through papermill; its HTML rendering
    run.py       a run folder, every notebook into it, then the report
    report/      sections.py builds the report once (claims.py: the ledger; tables.py: readable,
                 page-wide tables); markdown.py, html.py and text.py render it
    atomic.py    write_text_atomic
"""
from __future__ import annotations

from .atomic import write_text_atomic
from .execute import execute_notebook, render_notebook_html
from .report import (
    Figure,
    Ledger,
    Shown,
    build_ledger,
    build_report,
    claims_of,
    figures_of,
    flatten_metrics,
    headline_of,
    ledger_text,
    main_table_name,
    notebook_question,
    per_seed_rows,
    render_html,
    render_markdown,
    run_ledger,
    shown_table,
    table_rows,
    write_summary,
)
from .results import NotebookResult, RunSummary
from .run import RUNS_DIR, new_run_dir, run_notebooks
from .select import (
    ACCEPTS,
    NOTEBOOK_GLOB,
    NOTEBOOKS_DIR,
    REPO_ROOT,
    RESERVED,
    available_notebooks,
    check_parameter,
    notebook_parameters,
    parse_value,
    plan_parameters,
    resolve_notebooks,
    stale_pair,
)

__all__ = [
    "ACCEPTS", "NOTEBOOKS_DIR", "NOTEBOOK_GLOB", "REPO_ROOT", "RESERVED", "RUNS_DIR", "Figure", "Ledger",
    "NotebookResult", "RunSummary", "Shown", "available_notebooks", "build_ledger", "build_report", "check_parameter",
    "claims_of", "execute_notebook", "figures_of", "flatten_metrics", "headline_of", "ledger_text", "main_table_name",
    "new_run_dir", "notebook_parameters", "notebook_question", "parse_value", "per_seed_rows", "plan_parameters",
    "render_html", "render_markdown", "render_notebook_html", "resolve_notebooks", "run_ledger", "run_notebooks",
    "shown_table", "stale_pair", "table_rows", "write_summary", "write_text_atomic",
]
