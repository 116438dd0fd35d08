"""Study 03's findings, written from the numbers against the paper's, with the kit's paired intervals."""
from __future__ import annotations

import statistics
from typing import Sequence

from .. import kit
from ..kit.claims import Verdict, headline_words, paragraph
from .claims import PAPER
from .methods import METHODS

COMPARE = ("seq_va", "seq_av")  # the paper's two directions, sequence classification on held-out sequences


def fmt(row: dict | None, metric: str, scale: float = 100.0) -> str:
    """Accuracies in % with one decimal: "41.2 ± 3.0"."""
    return kit.fmt(row, metric, scale, digits=1)


class Comparisons(kit.Comparisons):
    """The kit's comparison recorder, with this study's sentence on what within-noise comparisons could detect."""

    def detectable(self) -> str:
        d = self.unresolved()
        if not d:
            return ""
        return (f"Differences called within noise could not be resolved: this run detects (80% power) about "
                f"{100 * statistics.median(d):.1f} points (median over those comparisons; "
                f"{100 * min(d):.1f} to {100 * max(d):.1f}).")


def _row(table: Sequence[dict], method: str, codes: int) -> dict | None:
    return next((r for r in table if r["method"] == method and r["codes"] == codes), None)


def write(table: Sequence[dict], rows: Sequence[dict], cfg, chance: dict[str, float],
          verdicts: Sequence[Verdict]) -> tuple[str, list[dict]]:
    """(findings paragraph, comparisons table)."""
    cmp = Comparisons(rows)
    K = cfg.codes
    out = [f"Held-out sequence classification (V->A: head trained on video codes of the {cfg.n_train} training "
           f"sequences, tested on audio codes of {cfg.n_test} test sequences), in %, mean ± std over "
           f"{len(cfg.seeds)} seed(s); chance {100 * chance['sequence']:.1f}% (sequences), always-background "
           f"{100 * chance['step']:.1f}% (steps)."]
    out.append(paragraph(verdicts))
    if _row(table, "no_cpc", K) and _row(table, "plain_vq", K):
        p = [cmp(("no_cpc", K), ("plain_vq", K), metric) for metric in COMPARE]
        out.append("The paper finds the model without Cross-CPC near plain VQ; here, without Cross-CPC minus "
                   f"plain VQ: V->A {p[0].words()}, A->V {p[1].words()}"
                   + (" (not resolved from plain VQ at this many seeds)." if all(x.sign == 0 for x in p) else "."))
    no_reset = [m for m, spec in METHODS.items() if spec.fields.get("reset") is False]
    if cfg.reset_after >= cfg.train_steps and any(_row(table, m, K) for m in no_reset):
        out.append(f"The reset ablations cannot differ here: a code is reset after {cfg.reset_after} batches unused "
                   f"and training runs {cfg.train_steps} steps, so no reset fires and "
                   "'without reset' equals the model it ablates.")
    out += _baselines(table, cmp, K) + _sizes(table) + _sharing(rows, K)
    out.append(cmp.detectable())
    out.append(f"Setting: {cfg.train_steps} training steps of batch {cfg.batch_size}, {K} codes x {cfg.dim} dims, "
               f"heads {cfg.head_steps} steps; 'beyond noise' = a paired 95% interval over seeds and test sequences "
               "that excludes zero.")
    return " ".join(s for s in out if s), cmp.done


def _sharing(rows: Sequence[dict], codes: int) -> list[str]:
    """Whether the 'unified' codebook shares indices across modalities at all, at the main size."""
    cells = [r for r in rows if r["method"] == "unicode" and r["setting"] == codes and r.get("shared_two") is not None]
    if not cells:
        return []
    two = statistics.fmean(r["shared_two"] for r in cells)
    dead = statistics.fmean(r["dead"] for r in cells) if all(r.get("dead") is not None for r in cells) else None
    text = (f"Index sharing at {codes} codes (usage over the evaluation pass, mean over {len(cells)} seed(s)): "
            f"{100 * two:.1f}% of the used codes are used by two or more modalities"
            + (f", {dead:.0f} codes unused" if dead is not None else "") + ".")
    if two == 0:
        text += (" So no index is shared: each modality quantises into its own part of the codebook, and whatever "
                 "transfers across modalities goes through the geometry of the code vectors the heads read, not "
                 "through shared discrete indices as the paper pictures a unified codebook.")
    if all(r.get("align_paired") is not None for r in cells):
        mean = lambda k: statistics.fmean(r[k] for r in cells)
        paired, unpaired = mean("align_paired"), mean("align_unpaired")
        gap, spread = mean("align_gap"), mean("align_spread")
        text += (f" Before quantisation two modalities' semantic features of the same step lie {paired:.2f} apart, "
                 f"against {unpaired:.2f} for the same step of another sequence; the modality centroids are "
                 f"{gap:.2f} apart, with a spread of {spread:.2f} around each.")
        if paired > 0.9 * unpaired and gap < 0.5 * spread:
            text += (" So there is no modality gap to blame, but no per-step alignment either: a step's features in "
                     "two modalities are about as far apart as unrelated steps, and its nearest code is one its own "
                     "modality uses.")
    strong = [r for r in rows if r["method"] == "cross_09" and r.get("shared_two") is not None]
    if strong:
        share = statistics.fmean(r["shared_two"] for r in strong)
        text += (f" With MM-EMA's cross weight at 0.9 (the authors' 0.5) {100 * share:.1f}% of the used codes are "
                 "shared.")
    return [text]


def _verdict(p_va: kit.Paired, p_av: kit.Paired) -> str:
    signs = {p_va.sign, p_av.sign}
    if signs == {0}:
        return "changes nothing beyond noise"
    if -1 in signs and 1 not in signs:
        return "hurts"
    if 1 in signs and -1 not in signs:
        return "helps"
    return "moves the two directions in opposite ways"


def _baselines(table, cmp: Comparisons, K: int) -> list[str]:
    if _row(table, "unicode", K) is None:
        return []
    parts = []
    for m, spec in METHODS.items():
        if spec.group not in ("baseline", "variant") or m == "plain_vq" or _row(table, m, K) is None:
            continue
        r = _row(table, m, K)
        p = [cmp((m, K), ("unicode", K), metric) for metric in COMPARE]
        parts.append(f"{spec.label} {fmt(r, 'seq_va')} / {fmt(r, 'seq_av')} ({_verdict(*p)} against Uni-Code)")
    return ["Other quantizers and objectives on the same encoders and data: " + "; ".join(parts) + "."] if parts else []


def _sizes(table) -> list[str]:
    rows = sorted((r for r in table if r["method"] == "unicode"), key=lambda r: r["codes"])
    if len(rows) < 2:
        return []
    curve = ", ".join(f"{r['codes']}: {fmt(r, 'seq_cross')}" for r in rows)
    return [f"Uni-Code by codebook size (mean over every cross-modal direction): {curve}."]


def headline(table: Sequence[dict], cfg, verdicts: Sequence[Verdict]) -> str:
    """One or two sentences for the run report's first screen: the numbers, then the headline claim's verdict."""
    K = cfg.codes
    full, plain = _row(table, "unicode", K), _row(table, "plain_vq", K)
    numbers = ""
    if full is not None and plain is not None:
        p1, p2 = PAPER["unicode"], PAPER["plain_vq"]
        numbers = (f"Held-out cross-modal sequence classification, V->A / A->V: full Uni-Code {fmt(full, 'seq_va')} / "
                   f"{fmt(full, 'seq_av')}%, plain shared VQ-EMA {fmt(plain, 'seq_va')} / {fmt(plain, 'seq_av')}% "
                   f"(paper {p1[0]} / {p1[1]} ({p1[2]}) against {p2[0]} / {p2[1]} ({p2[2]}, two modalities)). ")
    return numbers + headline_words(verdicts)
