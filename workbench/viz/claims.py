"""A study's claims and its seed plan as Markdown tables, from result.json's `claims` and `claims_family` rows."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .world import check_rows, markdown_table


def _pts(v: float | None, scale: float, sign: bool = True) -> str:
    if v is None:
        return "-"
    digits = 1 if scale >= 100 else 3
    return f"{scale * v:+.{digits}f}" if sign else f"{scale * v:.{digits}f}"


def claims_rows(claims: Sequence[Mapping[str, Any]]) -> list[dict]:
    """One display row per claim: id, the paper's words, the comparison, ours with its interval, the verdict."""
    out = []
    for c in check_rows(claims, "claims", nonempty=False):
        scale = c.get("scale", 100.0)
        ours = "-"
        if c.get("diff") is not None:
            ours = _pts(c["diff"], scale)
            if c.get("lo") is not None:
                ours += f" [{_pts(c['lo'], scale)}, {_pts(c['hi'], scale)}]"
        verdict = c["verdict"]
        if verdict == "unresolved" and c.get("seeds_needed"):
            verdict += f" (~{c['seeds_needed']} seeds would resolve it)"
        elif verdict == "unresolved" and c.get("items_bound"):
            verdict += " (more test items, not seeds, would resolve it)"
        comparison = f"{c['a']} vs {c['b']} on {c['metric']}" if c.get("a") else "-"
        if c.get("margin") is not None:
            comparison += f" (margin ±{_pts(c['margin'], scale, sign=False)})"
        out.append({"claim": c["id"] + (" (headline)" if c.get("headline") else ""), "the paper says": c["words"],
                    "comparison": comparison, "paper": c.get("paper_value") or "-",
                    "ours (95% CI)": ours, "seeds": c.get("seeds") or "-", "verdict": verdict})
    return out


def claims_markdown(claims: Sequence[Mapping[str, Any]], family: Mapping[str, Any] | None = None) -> str:
    """The claims table, with the sentence on how the family's error is held, for `display(Markdown(...))`."""
    text = markdown_table(claims_rows(claims))
    if family is not None and not isinstance(family, Mapping):
        raise TypeError(f"family={family!r:.80} is a {type(family).__name__}; accepted: result.json's claims_family "
                        "(a dict) or None")
    if family:
        looks = family.get("looks") or []
        stopped = looks[-1].get("stopped") if looks else None
        how = (f"sequential, {len(looks)} look(s), each at {family['alpha']:.2%}"
               + (f", stopped: {stopped}" if stopped else "") if looks else f"{family['alpha']:.0%}")
        text += (f"\n\nVerdicts hold the family-wise error over the {family.get('size', 0)} tested claims at {how} "
                 "(Holm); the interval is the unadjusted paired 95% one.")
    return text


def seeds_markdown(family: Mapping[str, Any]) -> str:
    """Which cells got how many seeds, and the headline claims they serve (why they got more)."""
    if not isinstance(family, Mapping):
        raise TypeError(f"family={family!r:.80} is a {type(family).__name__}; accepted: result.json's claims_family "
                        "(a dict with 'seeds')")
    rows = [{"method": r["method"], "setting": r["setting"], "seeds": r["seeds"],
             "headline claims served": ", ".join(r["headline_claims"]) or "-",
             "why": _why(r, len(family.get("looks") or []) > 1)} for r in family.get("seeds", [])]
    return markdown_table(rows)


def _why(row: Mapping[str, Any], sequential: bool) -> str:
    if not row["headline_claims"]:
        return "seeds"
    why = (f"a claim it serves asks for {row['declared_seeds']} seeds (its cells are cheap)"
           if row.get("declared_seeds") else "seeds + claim_seeds")
    return why + ("; sequential looks add seeds to open claims" if sequential else "")
