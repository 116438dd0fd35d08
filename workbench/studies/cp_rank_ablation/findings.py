"""Study 02's findings, written from the numbers with the kit's paired intervals (whatever they say)."""
from __future__ import annotations

import math
import statistics
from typing import NamedTuple, Sequence

from .. import kit
from .methods import METHODS

TASK_METRICS = ("r1", "acc_test", "acc_novel", "i2t_r1", "t2i_r1")  # what a comparison counts, where measured
HEADLINE_METRIC = "r1"  # retrieval recall@1, both directions averaged: the paper's retrieval claim
PLATEAU = 0.01  # "converged": the validation score is within 1 point of its final value from this step on


fmt = kit.fmt  # "0.412 ± 0.030"


def _row(table: Sequence[dict], method: str, rank: int | None = None) -> dict | None:
    return next((r for r in table if r["method"] == method and (rank is None or r["rank"] == rank)), None)


def _of(table: Sequence[dict], method: str) -> list[dict]:
    return sorted((r for r in table if r["method"] == method), key=lambda r: r["rank"] or 0)


def task_metrics(table: Sequence[dict]) -> tuple[str, ...]:
    """The comparison metrics this task measures (acc_novel only where the test slice has novel classes)."""
    return tuple(m for m in TASK_METRICS if any(r.get(m) is not None for r in table if r["method"] != "zero_shot"))


class Comparisons(kit.Comparisons):
    """The kit's comparison recorder, with this study's sentence on what within-noise comparisons could detect."""

    def detectable(self) -> str:
        d = self.unresolved()
        if not d:
            return ""
        return (f"Every difference called within noise above is smaller than what this run could detect (80% "
                f"power): {100 * statistics.median(d):.1f} points at the median over those comparisons "
                f"({100 * min(d):.1f} to {100 * max(d):.1f}).")


# ---------------------------------------------------------------------------- validation curves
class Curve(NamedTuple):
    """The validation curve of one (method, rank), averaged over seeds."""

    method: str
    rank: int | None
    steps: list[int]
    score: list[float]  # (acc + r1) / 2, or acc where r1 is not measured (probe)
    seeds: int


def _score(point: dict) -> float:
    return point["acc"] if point.get("r1") is None else (point["acc"] + point["r1"]) / 2


def curves(rows: Sequence[dict]) -> list[Curve]:
    """Mean validation curve over seeds of every trained (method, rank)."""
    groups: dict[tuple, list[list[dict]]] = {}
    for r in rows:
        if r.get("curve"):
            groups.setdefault((r["method"], r["setting"]), []).append(r["curve"])
    out = []
    for (method, rank), cs in groups.items():
        steps = [p["step"] for p in cs[0]]
        score = [statistics.fmean(_score(c[i]) for c in cs) for i in range(len(steps))]
        out.append(Curve(method, rank, steps, score, len(cs)))
    return out


def plateau_step(c: Curve, tol: float = PLATEAU) -> int:
    """The first step from which the curve stays within `tol` of its final value."""
    final = c.score[-1]
    step = c.steps[-1]
    for s, v in zip(reversed(c.steps), reversed(c.score)):
        if abs(v - final) > tol:
            break
        step = s
    return step


def chosen_rank(rows: Sequence[dict], seeds: Sequence[int] | None = None) -> int | None:
    """The mode-approx rank with the best final validation score (chosen on validation, not on test), on `seeds`
    (the base seeds every rank ran on: claim seeds added to the chosen rank later must not move the choice)."""
    rows = rows if seeds is None else [r for r in rows if r["seed"] in seeds]
    ma = [c for c in curves(rows) if c.method == "mode_approx"]
    return max(ma, key=lambda c: (c.score[-1], -c.rank)).rank if ma else None


# ---------------------------------------------------------------------------- the text
def write(table: Sequence[dict], rows: Sequence[dict], cfg, verdicts: Sequence = ()) -> tuple[str, list[dict], str]:
    """(findings paragraph, comparisons table, headline): the claims' verdicts, then the study's own reading."""
    from ..kit.claims import headline_words, paragraph

    cmp = Comparisons(rows)
    metrics = task_metrics(table)
    R = chosen_rank(rows, cfg.seeds)
    out = [_zero_shot(table, cfg), _convergence(rows, cfg), paragraph(verdicts)]
    out += _ranks(table, cmp, metrics) + _lora(table, cmp, metrics)
    numbers = _claim(table, cmp, R)
    headline = " ".join(s for s in (numbers, headline_words(verdicts)) if s)
    out += [numbers] + _ablations(table, cmp, metrics) + _baselines(table, cfg, R)
    out.append(cmp.detectable())
    out.append(f"Equal budgets: every trained method ran {cfg.steps} steps of batch {cfg.batch_size} on the same "
               f"samples per seed ({len(cfg.seeds)} seeds), adapters at lr {cfg.lr:g}, full fine-tuning at "
               f"{cfg.full_ft_lr:g}, the probe at {cfg.probe_lr:g}; {cfg.n_eval} test pairs (retrieval within "
               f"galleries of about {min(cfg.gallery, cfg.n_eval)}). 'Beyond noise' means "
               "a paired 95% interval over seeds and test items that excludes zero.")
    return " ".join(s for s in out if s), cmp.done, headline


def _zero_shot(table, cfg) -> str:
    zs = _row(table, "zero_shot")
    if not zs:
        return ""
    novel = f", {zs['acc_novel']:.3f} on the never-seen classes' images" if zs.get("acc_novel") is not None else ""
    return (f"Zero-shot on {cfg.test_split} at backdrop contrast {cfg.backdrop_contrast:g}: retrieval R@1 "
            f"{zs['r1']:.3f} (image->text {zs['i2t_r1']:.3f}, "
            f"text->image {zs['t2i_r1']:.3f}), classification accuracy {zs['acc_test']:.3f}{novel}; "
            f"heldout photos at the pretraining contrast {zs['acc_heldout']:.3f}.")


def _convergence(rows, cfg) -> str:
    cs = [c for c in curves(rows) if len(c.steps) > 2]
    if not cs:
        return ""
    adapters = [c for c in cs if METHODS[c.method].info.get("mode_approx") or c.method in LORAS]
    best = max(adapters or cs, key=lambda c: c.score[-1])
    late = [c for c in cs if plateau_step(c) > 0.75 * cfg.steps]
    label = METHODS[best.method].label + (f" R={best.rank}" if best.rank else "")
    text = (f"Convergence (validation slice, score = mean of accuracy and R@1): the best adapter ({label}) is within "
            f"{100 * PLATEAU:.0f} point of its final score {best.score[-1]:.3f} from step {plateau_step(best)} of "
            f"{cfg.steps}.")
    if late:
        text += (" Still moving in the last quarter: " + ", ".join(
            f"{c.method}{'' if c.rank is None else f' r={c.rank}'} (from step {plateau_step(c)})" for c in late) + ".")
    return text


def seeds_needed(p: kit.Paired) -> str:
    """Seeds a paired comparison would need to resolve its observed difference, at the observed spread."""
    if p.detectable is None or p.diff == 0:
        return "n/a"
    n = math.ceil(p.n * (p.detectable / abs(p.diff)) ** 2)
    return f"about {n}" if n <= 100 else "over 100"


def _ranks(table, cmp: Comparisons, metrics: Sequence[str]) -> list[str]:
    rows = _of(table, "mode_approx")
    if not rows:
        return []
    m = HEADLINE_METRIC
    curve = ", ".join(f"R={r['rank']} {fmt(r, m)}" for r in rows)
    text = [f"Mode approximation (Tucker core, shared) by rank, retrieval R@1 on test: {curve}."]
    if len(rows) < 2:
        return text
    steps = []
    for lo, hi in zip(rows, rows[1:]):
        p = cmp(("mode_approx", hi["rank"]), ("mode_approx", lo["rank"]), m)
        steps.append(f"R={lo['rank']}->{hi['rank']} {p.words()}"
                     + ("" if p.beyond_noise else f", {seeds_needed(p)} seeds would resolve it"))
    p = cmp(("mode_approx", rows[-1]["rank"]), ("mode_approx", rows[0]["rank"]), m)
    resolved = any(c["verdict"] == "beyond noise" for c in cmp.done[-len(rows):])
    text.append("Rank steps: " + "; ".join(steps) + f". From R={rows[0]['rank']} to R={rows[-1]['rank']} overall: "
                f"{p.words()}. " + ("The rank curve resolves at least one step." if resolved else
                                    "The rank curve does not resolve at this many seeds."))
    return text


LORAS = {  # LoRA method -> (the mode_approx row's key of its matched rank, how the findings name it)
    "lora": ("lora_rank", "LoRA (attention)"),
    "lora_same_sites": ("lora_sites_rank", "LoRA on mode approximation's own modules"),
    "lora_dropout": ("lora_sites_rank", "LoRA on mode approximation's modules at its dropout"),
}


def _lora(table, cmp: Comparisons, metrics: Sequence[str]) -> list[str]:
    """Mode approx vs each LoRA that ran, at the nearest parameter count it can reach, over ranks and task metrics."""
    return [s for method in LORAS for s in _lora_one(table, cmp, metrics, method)]


def _lora_one(table, cmp: Comparisons, metrics: Sequence[str], method: str) -> list[str]:
    key, name = LORAS[method]
    tally = {1: 0, -1: 0, 0: 0}
    per_rank = []
    for ma in _of(table, "mode_approx"):
        lora = _row(table, method, ma.get(key))
        if lora is None:
            continue
        votes = [cmp(("mode_approx", ma["rank"]), (method, lora["rank"]), m).sign for m in metrics]
        for v in votes:
            tally[v] += 1
        per_rank.append(f"R={ma['rank']} ({ma['trainable']:,} params) vs LoRA r={lora['rank']} "
                        f"({lora['trainable']:,}): {votes.count(1)} better, {votes.count(-1)} worse")
    if not per_rank:
        return []
    text = [f"Against {name} at the nearest parameter count it can reach, over {', '.join(metrics)} "
            "(beyond noise): " + "; ".join(per_rank) + "."]
    if tally[1] > tally[-1]:
        text.append(f"On balance mode approximation comes out ahead ({tally[1]} vs {tally[-1]} of "
                    f"{sum(tally.values())} comparisons).")
    elif tally[-1] > tally[1]:
        text.append(f"On balance LoRA comes out ahead ({tally[-1]} vs {tally[1]} of {sum(tally.values())} "
                    "comparisons).")
    else:
        text.append(f"Neither comes out ahead ({tally[1]} better, {tally[-1]} worse of {sum(tally.values())}).")
    return text


def _claim(table, cmp: Comparisons, R: int | None) -> str:
    """The paper's claim, on retrieval: mode approx at a tiny budget matches or beats LoRA and full FT."""
    ma = _row(table, "mode_approx", R) if R is not None else None
    if ma is None:
        return ""
    m = HEADLINE_METRIC
    parts = []
    for method, rank in (("lora", ma.get("lora_rank")), ("lora_same_sites", ma.get("lora_sites_rank")),
                         ("full_ft", None)):
        other = _row(table, method, rank)
        if other is None:
            continue
        p = cmp(("mode_approx", R), (method, other["rank"]), m)
        where = " on mode approximation's modules" if method == "lora_same_sites" else ""
        name = f"LoRA{where} r={other['rank']} ({other['trainable']:,} params)" if method in LORAS else \
            f"full fine-tuning ({other['trainable']:,})"
        parts.append(f"{name} {fmt(other, m)}: {p.words()}")
    if not parts:
        return ""
    return (f"On retrieval, mode approximation at R={R} (chosen on validation; "
            f"{ma['trainable']:,} parameters, {ma['trainable_pct']:.3f}% of the model) reaches R@1 {fmt(ma, m)}; "
            + "; ".join(parts) + ".")


ABLATIONS = {"mode_approx_cp": "the CP (diagonal-core) form", "mode_approx_noshare": "sharing off",
             "mode_approx_gated": "the gated query transformation", "mode_approx_context": "context enhancement"}


def _ablations(table, cmp: Comparisons, metrics: Sequence[str]) -> list[str]:
    text = []
    for method, what in ABLATIONS.items():
        for row in _of(table, method):
            ref = _row(table, "mode_approx", row["rank"])
            if ref is None:
                continue
            p = cmp((method, row["rank"]), ("mode_approx", row["rank"]), HEADLINE_METRIC)
            text.append(f"At R={row['rank']}, {what} ({row['trainable']:,} vs {ref['trainable']:,} parameters) "
                        f"changes R@1 by {p.words()}.")
    return text


def _baselines(table, cfg, R: int | None) -> list[str]:
    parts = []
    for method in ("full_ft", "bitfit", "loha", "lokr", "vera", "linear_probe"):
        row = _row(table, method)
        if row is not None:
            r1 = "" if row.get("r1") is None else f"R@1 {fmt(row, 'r1')}, "
            parts.append(f"{METHODS[method].label}: {r1}accuracy {fmt(row, 'acc_test')} ({row['trainable']:,} params, "
                         f"heldout {row['acc_heldout']:.3f})")
    text = [f"Baselines on {cfg.test_split}: " + "; ".join(parts) + "."] if parts else []
    zs, ma = _row(table, "zero_shot"), _row(table, "mode_approx", R if R is not None else cfg.keep_rank)
    if zs and ma:
        cost = ma["acc_heldout"] - zs["acc_heldout"]
        text.append(f"Adapting moves mode approx (R={ma['rank']}) by {100 * cost:+.1f} points on heldout photos "
                    f"({zs['acc_heldout']:.3f} -> {fmt(ma, 'acc_heldout')}).")
    return text
