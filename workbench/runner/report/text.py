"""The claims ledger as plain text for a terminal (`workbench claims RUN`)."""
from __future__ import annotations

import textwrap

from .claims import Ledger

COLUMNS = ("claim", "study", "verdict", "ours (95% interval)", "seeds", "comparison", "paper's number")
WIDTH = 110


def ledger_text(led: Ledger, width: int = WIDTH) -> str:
    """The count line, one aligned line per claim (id, study, verdict, our difference, seeds, comparison,
    the paper's number), the paper's words and the note indented under it, then the footnote."""
    rows = [[r.id + ("*" if r.headline else ""), r.study, r.verdict, r.ours, r.seeds, r.comparison, r.paper_value]
            for r in led.rows]
    widths = [max(len(c), *(len(row[j]) for row in rows)) for j, c in enumerate(COLUMNS[:-1])]

    def line(values) -> str:
        return "  ".join(f"{v:<{w}}" for v, w in zip(values, widths)) + "  " + values[-1]

    out = [led.count_line, "", line(COLUMNS), line(["-" * len(c) for c in COLUMNS])]
    indent = " " * (widths[0] + 2)
    for r, row in zip(led.rows, rows):
        out.append(line(row).rstrip())
        said = f"“{r.words}”" + (f" ({r.paper})" if r.paper else "")
        out += textwrap.wrap(said, width, initial_indent=indent, subsequent_indent=indent)
        if r.note:
            out += textwrap.wrap(r.note, width, initial_indent=indent + "-> ", subsequent_indent=indent + "   ")
    out += ["", led.footnote]
    if any(r.headline for r in led.rows):
        out.append("* the study's headline claim")
    return "\n".join(out)
