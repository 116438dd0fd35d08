"""The run report: summary.md, summary.html and summary.json in the run folder.

`sections.build_report` builds the report once as plain data: the claims ledger (every claim the
studies test and its verdict here), an overview of the notebooks, then one section per study
(question, headline finding, main table, main figures, details). `markdown` and `html` render the
same sections; `text` prints the ledger for a terminal.
"""
from __future__ import annotations

import json

from ..atomic import write_text_atomic
from ..results import RunSummary
from . import html, markdown
from .claims import ClaimRow, Ledger, build_ledger, claims_of, run_ledger, run_results
from .sections import Figure, Report, Section, build_report, figures_of, headline_of, main_table_name, notebook_question
from .tables import Shown, fit, flatten_metrics, per_seed_rows, shown_table, table_rows
from .text import ledger_text

__all__ = ["ClaimRow", "Figure", "Ledger", "Report", "Section", "Shown", "build_ledger", "build_report", "claims_of",
           "figures_of", "fit", "flatten_metrics", "headline_of", "ledger_text", "main_table_name",
           "notebook_question", "per_seed_rows", "render_html", "render_markdown", "run_ledger", "run_results",
           "shown_table", "table_rows", "write_summary"]


def render_markdown(summary: RunSummary) -> str:
    """The run report as Markdown (figures linked by paths relative to the run folder)."""
    return markdown.render(build_report(summary))


def render_html(summary: RunSummary) -> str:
    """The run report as one HTML page that opens from disk (images by relative path)."""
    return html.render(build_report(summary))


def write_summary(summary: RunSummary) -> None:
    """Write summary.md, summary.html and summary.json into the run folder (atomically)."""
    report = build_report(summary)
    write_text_atomic(summary.summary_md, markdown.render(report))
    write_text_atomic(summary.summary_html, html.render(report))
    write_text_atomic(summary.run_dir / "summary.json", json.dumps({
        "ok": summary.ok, "quick": summary.quick, "params": summary.params, "seconds": round(summary.seconds, 2),
        "notebooks": [{"name": r.name, "status": r.status, "seconds": round(r.seconds, 2),
                       "output_dir": str(r.output_dir), "error": r.error, "failed_cell": r.failed_cell,
                       "parameters": r.parameters, "metrics": (r.result or {}).get("metrics"),
                       "headline": (r.result or {}).get("headline")}
                      for r in summary.results]}, indent=1, default=str))
