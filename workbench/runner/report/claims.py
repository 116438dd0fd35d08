"""The claims ledger: every claim the studies test, what the paper says, what this run found.

A study's result.json carries `claims` (a list of dicts: id, study, paper, words, a, b, metric,
direction, margin, paper_value, paper_table, headline, verdict, diff, lo, hi, seeds, p, p_holm,
detectable, seeds_needed, scale, unit, reason) and `claims_family` ({method, alpha, size}: the
claims tested together). A result.json without them states no claims. The ledger is plain data;
the Markdown, HTML and text renderers print it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

HOLDS = ("supported", "equivalent")
MUTED = ("not run", "out of scope")
DIRECTIONS = {">": ">", "<": "<", "=": "=", ">=": "≥"}
WORDS_CHARS = 140  # the paper's words are cut (at a word) beyond this


@dataclass
class ClaimRow:
    """One claim as the ledger shows it: every field already text."""

    id: str
    notebook: str  # the notebook (report section) whose result.json states it: the row links there
    study: str
    headline: bool
    words: str  # the paper's words, short
    paper: str  # who says it ("Xiao et al., CVPR 2023")
    comparison: str  # "mask_fd vs full_ft on ood_avg (paper: >)"
    paper_value: str  # "masked FD 58.7 vs FT 54.9 OOD avg (Table 1)"
    ours: str  # "+3.1 [+1.2, +5.0] points", "-" when not run
    seeds: str
    verdict: str
    note: str  # unresolved: "could detect 1.5 points; ~20 seeds would resolve"; else the reason, if any
    claim: dict = field(repr=False, default_factory=dict)  # as result.json has it

    @property
    def kind(self) -> str:
        """The verdict's colour class: holds, contradicted, unresolved, muted (not run / out of scope)."""
        if self.verdict in HOLDS:
            return "holds"
        if self.verdict == "contradicted":
            return "contradicted"
        return "muted" if self.verdict in MUTED else "unresolved"

    @property
    def css(self) -> str:
        """The verdict's own class: v-supported, v-not-run, ..."""
        return "v-" + "-".join(self.verdict.split())


@dataclass
class Ledger:
    rows: list[ClaimRow]
    count_line: str  # "Of the 17 claims these papers make, 3 hold here (...), ..."
    footnote: str  # how verdicts control the error, and what the interval is


def claims_of(result: dict | None) -> list[dict]:
    """A result.json's claims (none when it has no "claims" list)."""
    claims = (result or {}).get("claims")
    return [c for c in claims if isinstance(c, dict)] if isinstance(claims, list) else []


def build_ledger(results: Iterable[tuple[str, dict | None]], study: str | None = None) -> Ledger | None:
    """The ledger of (notebook stem, result.json) pairs in run order; None when no result states a claim.
    `study`: only the claims of that study (its name, or the notebook's stem or number)."""
    rows, families = [], {}
    for notebook, result in results:
        for claim in claims_of(result):
            name = str(claim.get("study") or (result or {}).get("study") or notebook)
            if study is not None and not _matches(study, name, notebook):
                continue
            rows.append(claim_row(notebook, name, claim))
            families.setdefault(name, (result or {}).get("claims_family"))
    if not rows:
        return None
    return Ledger(rows, count_line(rows), footnote(families))


def _matches(wanted: str, study: str, notebook: str) -> bool:
    number = notebook.split("_", 1)[0]
    return wanted in (study, notebook) or (wanted.isdigit() and number.isdigit() and int(wanted) == int(number))


def claim_row(notebook: str, study: str, c: dict) -> ClaimRow:
    verdict = str(c.get("verdict") or "unresolved")
    scale, unit = c.get("scale") or 1, str(c.get("unit") or "")
    ours = "-"
    if _num(c.get("diff")):
        ours = signed(c["diff"], scale)
        if _num(c.get("lo")) and _num(c.get("hi")):
            ours += f" [{signed(c['lo'], scale)}, {signed(c['hi'], scale)}]"
        ours += f" {unit}" if unit else ""
    note = str(c.get("reason") or "").strip()
    if verdict == "unresolved":
        could = []
        if _num(c.get("detectable")):
            could.append(f"could detect {magnitude(c['detectable'], scale, unit)}")
        if _num(c.get("seeds_needed")):
            could.append(f"~{int(c['seeds_needed'])} seeds would resolve")
        elif c.get("items_bound"):
            could.append("more test items, not seeds, would resolve")
        note = "; ".join(could) + (f" ({note})" if note and could else note)
    table = str(c.get("paper_table") or "")
    value = str(c.get("paper_value") or "")
    return ClaimRow(
        id=str(c.get("id") or "?"), notebook=notebook, study=study, headline=bool(c.get("headline")),
        words=short(str(c.get("words") or "")), paper=str(c.get("paper") or ""),
        comparison=comparison(c), paper_value=f"{value} ({table})" if value and table else value or table,
        ours=ours, seeds=str(c["seeds"]) if c.get("seeds") else "-", verdict=verdict, note=note,
        claim=c)


def comparison(c: dict) -> str:
    """ "a vs b on metric (paper: >)", with the margin of an equivalence or non-inferiority claim."""
    if not (c.get("a") and c.get("b")):
        return str(c.get("metric") or "-")
    text = f"{_side(c['a'])} vs {_side(c['b'])} on {c.get('metric') or '?'}"
    direction = str(c.get("direction") or "")
    if not direction:
        return text
    said = DIRECTIONS.get(direction, direction)
    scale, unit = c.get("scale") or 1, str(c.get("unit") or "")
    if _num(c.get("margin")) and direction in ("=", ">="):
        m = magnitude(c["margin"], scale, unit)
        said += f" within ±{m}" if direction == "=" else f", margin {m}"
    return f"{text} (paper: {said})"


def _side(side: Any) -> str:
    """A method id, or [method, setting] as "method@setting" (the kit's `side_name`)."""
    return "@".join(map(str, side)) if isinstance(side, (list, tuple)) else str(side)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _digits(scale: float) -> str:
    return ".1f" if scale >= 100 else ".3f"  # as the kit writes them (`kit.claims.fmt_points`)


def signed(v: float, scale: float = 1) -> str:
    """A difference in display units, with its sign: "+3.1"."""
    return f"{v * scale:+{_digits(scale)}}"


def magnitude(v: float, scale: float = 1, unit: str = "") -> str:
    """A size in display units: "1.5 points"."""
    text = f"{abs(v) * scale:{_digits(scale)}}"
    return f"{text} {unit}" if unit else text


def short(words: str, limit: int = WORDS_CHARS) -> str:
    words = " ".join(words.split())
    if len(words) <= limit:
        return words
    return words[:limit].rsplit(" ", 1)[0].rstrip(",;:.") + " …"


def _n(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def count_line(rows: Sequence[ClaimRow]) -> str:
    """ "Of the 17 claims these papers make, 3 hold here (supported or equivalent), 1 is contradicted, ..." """
    papers = {r.paper for r in rows if r.paper}
    kinds = [r.kind for r in rows]
    parts = [_n(kinds.count("holds"), "holds", "hold") + " here (supported or equivalent)",
             _n(kinds.count("contradicted"), "is", "are") + " contradicted",
             _n(kinds.count("unresolved"), "is", "are") + " unresolved",
             _n(kinds.count("muted"), "is", "are") + " out of scope / not run"]
    who = "this paper makes" if len(papers) == 1 else "these papers make"
    return f"Of the {_n(len(rows), 'claim', 'claims')} {who}, " + ", ".join(parts) + "."


def footnote(families: dict[str, Any]) -> str:
    """How the verdicts hold the error: the same words for every study when their families agree."""
    said = {name: _family(f) for name, f in families.items()}
    if len(set(said.values())) == 1 and None not in said.values():
        method, alpha = next(iter(said.values()))
        control = f"Verdicts hold the family-wise error at {alpha} within each study ({method})"
    else:
        each = "; ".join(f"{name}: " + (f"{f[0]} at {f[1]}" if f else "not stated") for name, f in said.items())
        control = f"Verdicts hold the family-wise error within each study ({each})"
    return control + "; the interval shown is unadjusted."


def _family(f: Any) -> tuple[str, str] | None:
    if not isinstance(f, dict) or not _num(f.get("alpha")):
        return None
    method = str(f.get("method") or "")
    named = {"holm": "Holm", "bonferroni": "Bonferroni", "none": "no adjustment"}.get(method.lower(), method)
    return named, f"{100 * f['alpha']:g}%"


def run_results(run_dir: Path | str) -> list[tuple[str, dict]]:
    """(notebook stem, result.json) of every notebook of a run folder, in notebook order.

    ValueError (one line, for the command line) when the folder is not a run folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder; give a run folder (runs/<id>)")
    paths = sorted(run_dir.glob("*/result.json"))
    if not paths:
        raise ValueError(f"{run_dir} is not a run folder: it holds no <notebook>/result.json")
    out = []
    for path in paths:
        try:
            out.append((path.parent.name, json.loads(path.read_text())))
        except (OSError, ValueError, RecursionError) as e:  # unreadable, not text, not JSON, nested too deep
            raise ValueError(f"{path} cannot be read: {e}") from None
    return out


def run_ledger(run_dir: Path | str, study: str | None = None) -> tuple[Ledger, list[dict]]:
    """The ledger of a run folder and its claims as result.json has them (filtered by `study`).

    ValueError (one line) when the folder is not a run folder, states no claims, or none of `study`."""
    results = run_results(run_dir)
    for stem, r in results:  # a "claims" entry that is there but not a list of claims is a damaged file, not "none"
        claims = r.get("claims") if isinstance(r, dict) else None
        if claims is not None and (not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims)):
            raise ValueError(f"{Path(run_dir) / stem / 'result.json'}: 'claims' is a JSON {type(claims).__name__}"
                             f"{' holding other things than objects' if isinstance(claims, list) else ''}; accepted: "
                             "a list of claim objects, as a study writes them")
    if not any(claims_of(r) for _, r in results):
        files = _n(len(results), "result.json", "result.json files")
        raise ValueError(f"{run_dir} states no claims: none of its {files} has a \"claims\" list "
                         "(written before the claims ledger?)")
    ledger = build_ledger(results, study)
    if ledger is None:
        names = sorted({str(c.get("study") or r.get("study") or stem) for stem, r in results for c in claims_of(r)})
        raise ValueError(f"no claims of study {study!r} in {run_dir}; accepted: a study with claims there (its name, "
                         f"notebook stem or number): {', '.join(names)}")
    return ledger, [row.claim for row in ledger.rows]
