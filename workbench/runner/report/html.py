"""The run report's sections as one HTML page that opens from disk (images by relative path).

Tables fit the page: cells wrap, headers break after "_", a mean ± std and its interval are two
lines of one cell, and a table too wide for that arrives already transposed or split
(`tables.fit`). Claim verdicts are coloured by class: green holds, red contradicted, amber
unresolved, grey not run / out of scope.
"""
from __future__ import annotations

import html
import re

from .claims import Ledger
from .sections import Report, Section, Shot, TableView

esc = html.escape

CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222;"
    "line-height:1.4}table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;"
    "padding:2px 6px;text-align:left;font-size:.85em;vertical-align:top}th{background:#f3f3f3;"
    "overflow-wrap:break-word}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.n small{color:#555}table.fit{table-layout:auto;max-width:100%}table.fit td,table.fit th{font-size:.78em}"
    "table.fit th{text-align:center}.wide{max-width:100%;overflow-x:auto}"
    ".ok{color:#197a19}.failed{color:#b00020}"
    "pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}img{max-width:100%;"
    "border:1px solid #ddd}figure{margin:.6em 0}figcaption{font-size:.88em;color:#444;max-width:900px}"
    ".legend{font-size:.8em;color:#555;margin-top:-.8em}"
    ".question{color:#333}.finding{border-left:5px solid #2c7fb8;background:#eef5fb;padding:.5em .9em;"
    "margin:.6em 0;font-size:1.05em}.links a{margin-right:1em}details{margin:1em 0}summary{cursor:pointer;"
    "font-weight:600}section{border-top:2px solid #ddd;margin-top:1.5em}.main-figs{display:flex;"
    "flex-wrap:wrap;gap:1em;align-items:flex-start}.main-figs figure{flex:1 1 420px}"
    # the claims ledger
    ".counts{font-size:1.05em}table.ledger{width:100%}table.ledger td,table.ledger th{font-size:.8em}"
    "table.ledger td:first-child{white-space:nowrap}table.ledger td.words{min-width:12em;max-width:22em}"
    "table.ledger .paper{color:#666}tr.headline td:first-child{font-weight:700}"
    ".verdict{display:inline-block;padding:0 .45em;border-radius:3px;font-weight:600;white-space:nowrap}"
    ".note{display:block;font-size:.92em;color:#555;margin-top:.15em}"
    ".holds .verdict{background:#d8f0d8;color:#1b5e20}.contradicted .verdict{background:#fbd5d5;color:#b00020}"
    ".unresolved .verdict{background:#fdebc8;color:#8a5300}.muted .verdict{background:#eee;color:#777}"
    "tr.muted td{color:#888}.footnote{font-size:.85em;color:#555;margin-top:-.6em}"
)


def head(column: str) -> str:
    """A header that may break after "_" and at its own line breaks."""
    return esc(column).replace("_", "_<wbr>").replace("\n", "<br>")


def td(text: str) -> str:
    if re.match(r"^[-+]?\d", text) or text == "-":  # a number (or none); a second line (its interval) smaller
        first, _, rest = text.partition("\n")
        return f"<td class=n>{esc(first)}" + (f"<br><small>{esc(rest)}</small>" if rest else "") + "</td>"
    return f"<td>{esc(text).replace(chr(10), '<br>')}</td>"


def table(columns: list[str], rows: list[list[str]], cls: str = "") -> str:
    heads = "".join(f"<th>{head(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(td(v) for v in row) + "</tr>" for row in rows)
    return f"<div class='wide'><table{f' class={cls}' if cls else ''}><tr>{heads}</tr>{body}</table></div>"


def table_view(view: TableView, level: str) -> list[str]:
    parts = [f"<{level}>{esc(view.title)}</{level}>"]
    parts += [table(p.columns, p.cells, "fit") for p in view.parts]
    return parts + ([f"<p class='legend'>{esc(view.legend)}</p>"] if view.legend else [])


def figure(shot: Shot) -> str:
    return (f"<figure><img src='{esc(shot.src)}' alt='{esc(shot.name)}'>"
            f"<figcaption><b>{esc(shot.name)}.</b> {esc(shot.caption)}</figcaption></figure>")


def ledger(led: Ledger) -> list[str]:
    heads = "".join(f"<th>{c}</th>" for c in ("claim", "study", "the paper says", "comparison", "paper's number",
                                                "ours (95% interval)", "seeds", "verdict"))
    rows = []
    for r in led.rows:
        words = f"“{esc(r.words)}”" + (f" <span class='paper'>({esc(r.paper)})</span>" if r.paper else "")
        note = f"<span class='note'>{esc(r.note)}</span>" if r.note else ""
        rows.append(
            f"<tr id='claim-{esc(r.id)}' class='{r.kind}{' headline' if r.headline else ''}'>"
            f"<td><a href='#{esc(r.notebook)}'>{esc(r.id)}</a></td><td>{esc(r.study)}</td>"
            f"<td class='words'>{words}</td><td>{esc(r.comparison)}</td><td>{esc(r.paper_value)}</td>"
            f"<td class=n>{esc(r.ours)}</td><td class=n>{esc(r.seeds)}</td>"
            f"<td><span class='verdict {esc(r.css)}'>{esc(r.verdict)}</span>{note}</td></tr>")
    return ["<section id='claims'><h2>Claims</h2>", f"<p class='counts'>{esc(led.count_line)}</p>",
            f"<div class='wide'><table class='ledger'><tr>{heads}</tr>{''.join(rows)}</table></div>",
            f"<p class='footnote'>{esc(led.footnote)}</p></section>"]


def section(s: Section) -> list[str]:
    links = " ".join(f"<a href='{esc(link.href)}'>{esc(link.label)}</a>" for link in s.links)
    parts = [f"<section><h2 id='{esc(s.name)}'>{esc(s.name)}: <span class='{esc(s.status)}'>{esc(s.status)}</span>"
             f" <small>({s.seconds:.1f} s)</small></h2><p class='links'>{links}</p>"]
    if s.question:
        parts.append(f"<p class='question'><b>Question.</b> {esc(s.question)}</p>")
    if s.error:
        parts.append(f"<p class='failed'><b>Failed in {esc(s.error)}</b></p>")
    if s.traceback:
        parts.append("<pre>" + esc(s.traceback) + "</pre>")
    if s.headline:
        parts.append(f"<p class='finding'><b>Finding.</b> {esc(s.headline)}</p>")
    if s.main:
        parts += table_view(s.main, "h3")
    if s.main_figures:
        parts.append("<div class='main-figs'>" + "".join(figure(f) for f in s.main_figures) + "</div>")
    if s.has_details:
        details = [f"<p><b>Findings.</b> {esc(s.findings)}</p>"] if s.findings else []
        for view in s.tables:
            details += table_view(view, "h4")
        details += [figure(f) for f in s.other_figures]
        parts.append("<details><summary>Details: the whole findings, every table, per-seed rows, metrics, "
                     f"all figures ({s.n_figures})</summary>" + "".join(details) + "</details>")
    if s.no_result:
        parts.append("<p>(no result.json written)</p>")
    return parts + ["</section>"]


def render(report: Report) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(report.title)}</title>"
             f"<style>{CSS}</style></head><body>", f"<h1>{esc(report.title)}</h1>", f"<p>{esc(report.line)}</p>"]
    if report.ledger:
        parts += ledger(report.ledger)
    heads = "".join(f"<th>{c}</th>" for c in ("notebook", "status", "seconds", "study", "open"))
    rows = "".join(
        f"<tr><td><a href='#{esc(s.name)}'>{esc(s.name)}</a></td><td>{esc(s.status)}</td><td>{s.seconds:.1f}</td>"
        f"<td>{esc(s.study or '-')}</td><td>"
        + " · ".join(f"<a href='{esc(link.href)}'>{esc(link.label)}</a>" for link in s.links) + "</td></tr>"
        for s in report.sections)
    parts.append(f"<table class='overview'><tr>{heads}</tr>{rows}</table>")
    for s in report.sections:
        parts += section(s)
    parts.append("</body></html>")
    return "\n".join(parts)
