"""The run report as plain data, built once: the claims ledger, an overview, then one section per study.

A study's section opens with its question (the notebook's **Question.** paragraph), its headline
finding (result.json's "headline"), the main table (percent, mean ± std [95% interval], fitted to
the page's width) and the main figures with their captions; then the details: the whole findings,
every other table, the per-seed rows, the metrics and every other figure. `markdown` and `html`
render these same sections.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..results import NotebookResult, RunSummary
from .claims import Ledger, build_ledger
from .tables import Shown, fit, flatten_metrics, fmt, per_seed_rows, shown_table

TRACEBACK_LINES = 15


@dataclass
class Figure:
    path: Path
    caption: str
    main: bool


@dataclass
class Link:
    label: str
    href: str  # relative to the run folder


@dataclass
class Shot:
    """A figure as the report shows it."""

    src: str  # relative to the run folder
    name: str
    caption: str  # "" when the notebook gave none


@dataclass
class TableView:
    title: str
    parts: list[Shown]  # one table, or the blocks of a wide one (`tables.fit`)
    legend: str = ""


@dataclass
class Section:
    name: str  # the notebook's stem: also the section's anchor
    status: str
    seconds: float
    study: str | None
    links: list[Link]
    question: str = ""
    error: str | None = None
    traceback: str = ""  # its last lines
    headline: str = ""
    main: TableView | None = None
    main_figures: list[Shot] = field(default_factory=list)
    findings: str = ""
    tables: list[TableView] = field(default_factory=list)  # the other tables, per-seed rows, metrics
    other_figures: list[Shot] = field(default_factory=list)
    no_result: bool = False  # ran, wrote no result.json

    @property
    def n_figures(self) -> int:
        return len(self.main_figures) + len(self.other_figures)

    @property
    def has_details(self) -> bool:
        return bool(self.findings or self.tables or self.other_figures)


@dataclass
class Report:
    title: str
    line: str  # "2 of 2 notebooks ok · quick=True · overrides: none · 31.0 s"
    ledger: Ledger | None
    sections: list[Section]


def build_report(summary: RunSummary) -> Report:
    run = summary.run_dir
    n_ok = len(summary.results) - len(summary.failures)
    params = ", ".join(f"{k}={v!r}" for k, v in summary.params.items()) or "none"
    line = (f"{n_ok} of {len(summary.results)} notebooks ok · quick={summary.quick} · "
            f"overrides: {params} · {summary.seconds:.1f} s")
    ledger = build_ledger((r.name, r.result) for r in summary.results)
    return Report(f"workbench run {run.name}", line, ledger, [build_section(r, run) for r in summary.results])


def build_section(r: NotebookResult, run: Path) -> Section:
    res = r.result or {}
    sec = Section(r.name, r.status, r.seconds, res.get("study"), [Link(label, rel(p, run)) for label, p in links(r)],
                  question=notebook_question(r.executed) if r.executed.exists() else "", error=r.error,
                  traceback="\n".join((r.traceback or "").strip().splitlines()[-TRACEBACK_LINES:]),
                  headline=headline_of(res), findings=str(res.get("findings") or "").strip(),
                  no_result=r.result is None and r.status == "ok")
    main, percent = main_table_name(res), res.get("percent") or ()
    for name, table in (res.get("tables") or {}).items():
        view = table_view(str(name), shown_table(table, percent))
        if name == main:
            sec.main = view
        else:
            sec.tables.append(view)
    if res.get("rows"):
        sec.tables.append(table_view(f"per-seed rows ({len(res['rows'])})", shown_table(per_seed_rows(res["rows"]),
                                                                                          percent)))
    metrics = flatten_metrics(res.get("metrics") or {})
    if metrics:
        sec.tables.append(TableView("Metrics", [Shown(["metric", "value"], [[k, fmt(v)] for k, v in metrics])]))
    for f in figures_of(r):
        shot = Shot(rel(f.path, run), f.path.stem, f.caption if f.caption != f.path.stem else "")
        (sec.main_figures if f.main else sec.other_figures).append(shot)
    return sec


def table_view(title: str, shown: Shown) -> TableView:
    parts = fit(shown)
    legend = shown.legend
    if len(parts) == 1 and parts[0].columns[:1] == [""] and shown.columns[:1] != [""]:
        legend = "one column per row of the table; " + legend if legend else "one column per row of the table"
    for p in parts:
        p.legend = ""
    return TableView(title, parts, legend)


def links(r: NotebookResult) -> list[tuple[str, Path]]:
    """(label, file) of what a study's section links: rendered notebook, result.json, the .ipynb."""
    out = []
    if r.executed.with_suffix(".html").exists():
        out.append(("notebook (HTML)", r.executed.with_suffix(".html")))
    if (r.output_dir / "result.json").exists():
        out.append(("result.json", r.output_dir / "result.json"))
    out.append(("executed .ipynb", r.executed))
    return out


def rel(path: Path, run_dir: Path) -> str:
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        return path.as_posix()


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


def figures_of(r: NotebookResult) -> list[Figure]:
    """The notebook's figures in the order it saved them, with the captions it gave (file name else);
    without a caption marked main, the first figure is the main one."""
    info = (r.result or {}).get("figure_captions") or {}
    if not info and r.figures:
        from workbench.studies.kit.result import figure_captions

        info = figure_captions(r.output_dir)
    files = sorted(r.figures, key=lambda p: (info.get(p.stem, {}).get("order", len(info)), p.stem))
    figs = [Figure(p, info.get(p.stem, {}).get("caption") or p.stem, bool(info.get(p.stem, {}).get("main")))
            for p in files]
    if figs and not any(f.main for f in figs):
        figs[0].main = True
    return figs
