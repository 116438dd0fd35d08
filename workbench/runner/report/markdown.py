"""The run report's sections as Markdown (figures linked by paths relative to the run folder)."""
from __future__ import annotations

from .claims import Ledger
from .sections import Report, Section, Shot, TableView


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows] + [""]


def table_view(view: TableView, level: str) -> list[str]:
    lines = [f"{level} {view.title}", ""]
    for part in view.parts:
        lines += table(part.columns, part.cells)
    return lines + ([f"*{view.legend}*", ""] if view.legend else [])


def figure(shot: Shot) -> list[str]:
    return [f"![{shot.name}]({shot.src})", "", f"*{shot.caption or shot.name}*", ""]


def ledger(led: Ledger) -> list[str]:
    rows = [[f"[{'**' + r.id + '**' if r.headline else r.id}](#{r.notebook})", r.study,
             f"“{r.words}”" + (f" ({r.paper})" if r.paper else ""), r.comparison, r.paper_value, r.ours, r.seeds,
             r.verdict + (f": {r.note}" if r.note else "")] for r in led.rows]
    return (["## Claims", "", led.count_line, ""]
            + table(["claim", "study", "the paper says", "comparison", "paper's number", "ours (95% interval)",
                     "seeds", "verdict"], rows) + [f"*{led.footnote}*", ""])


def section(s: Section) -> list[str]:
    lines = [f"<a id=\"{s.name}\"></a>", "", f"## {s.name}: {s.status} ({s.seconds:.1f} s)", ""]
    if s.question:
        lines += [f"**Question.** {s.question}", ""]
    if s.error:
        lines += [f"**Failed in {s.error}**", ""]
    if s.traceback:
        lines += ["```", *s.traceback.splitlines(), "```", ""]
    if s.headline:
        lines += [f"> **Finding.** {s.headline}", ""]
    if s.main:
        lines += table_view(s.main, "###")
    for shot in s.main_figures:
        lines += figure(shot)
    lines += ["### Details", ""]
    if s.findings:
        lines += ["**Findings.** " + s.findings, ""]
    for view in s.tables:
        lines += table_view(view, "####")
    for shot in s.other_figures:
        lines += figure(shot)
    if s.no_result:
        lines += ["(no result.json written)", ""]
    return lines


def render(report: Report) -> str:
    lines = [f"# {report.title}", "", report.line, ""]
    if report.ledger:
        lines += ledger(report.ledger)
    lines += table(["notebook", "status", "seconds", "study", "links"],
                   [[s.name, s.status, f"{s.seconds:.1f}", s.study or "-",
                     " · ".join(f"[{link.label}]({link.href})" for link in s.links)] for s in report.sections])
    for s in report.sections:
        lines += section(s)
    return "\n".join(lines)
