"""Study 02's findings, written from the numbers with the kit's paired intervals (whatever they say)."""
from __future__ import annotations

import statistics
from typing import Sequence

from workbench.world import World

from .. import kit
from .methods import METHODS

COMPARE = ("acc_test", "acc_novel", "i2t_r1", "t2i_r1")  # the task metrics comparisons count


def fmt(row: dict | None, metric: str) -> str:
    if row is None or row.get(metric) is None:
        return "n/a"
    std = row.get(f"{metric}_std")
    return f"{row[metric]:.3f}" + (f" ± {std:.3f}" if row.get("seeds", 1) > 1 and std is not None else "")


def _row(table: Sequence[dict], method: str, rank: int | None = None) -> dict | None:
    return next((r for r in table if r["method"] == method and (rank is None or r["rank"] == rank)), None)


def _of(table: Sequence[dict], method: str) -> list[dict]:
    return [r for r in table if r["method"] == method]


class Comparisons:
    """Every paired comparison the findings make, kept for result.json's `comparisons` table."""

    def __init__(self, rows: Sequence[dict]):
        self.cells, self.done = rows, []

    def __call__(self, a: tuple[str, int | None], b: tuple[str, int | None], metric: str) -> kit.Paired:
        p = kit.paired(self.cells, a, b, metric)
        self.done.append(p.row())
        return p

    def detectable(self) -> str:
        d = [c["detectable"] for c in self.done if c["verdict"] == "within noise" and c["detectable"] is not None]
        if not d:
            return ""
        return (f"Differences called within noise above could not be resolved: at this many seeds and test items "
                f"the run detects (80% power) about {100 * statistics.median(d):.1f} points (median over those "
                f"comparisons; {100 * min(d):.1f} to {100 * max(d):.1f}).")


def write(table: Sequence[dict], rows: Sequence[dict], cfg) -> tuple[str, list[dict]]:
    """(findings paragraph, comparisons table)."""
    cmp = Comparisons(rows)
    out = []
    zs = _row(table, "zero_shot")
    if zs:
        out.append(f"Zero-shot on {cfg.test_split}: accuracy {zs['acc_test']:.3f} over "
                   f"{len(World.classes)} classes, {zs['acc_novel']:.3f} on the 4 never-seen classes' images, "
                   f"image->text R@1 {zs['i2t_r1']:.3f}; heldout {zs['acc_heldout']:.3f}.")
    out += _ranks(table, cmp) + _lora(table, cmp) + _ablations(table, cmp) + _baselines(table, cfg)
    out.append(cmp.detectable())
    out.append(f"Setting: {cfg.steps} steps of batch {cfg.batch_size}, {len(cfg.seeds)} seed(s), "
               f"{cfg.n_eval} test pairs; 'beyond noise' means a paired 95% interval over seeds (and test "
               "items, for accuracies) that excludes zero.")
    return " ".join(s for s in out if s), cmp.done


def _ranks(table, cmp: Comparisons) -> list[str]:
    rows = sorted(_of(table, "mode_approx"), key=lambda r: r["rank"])
    if not rows:
        return []
    curve = ", ".join(f"R={r['rank']} {fmt(r, 'acc_novel')}" for r in rows)
    best = max(rows, key=lambda r: r["acc_test"])
    text = [f"Mode approximation (Tucker core, shared), accuracy on the novel classes' images by rank: {curve}. "
            f"Best accuracy over all test classes at R={best['rank']}: {fmt(best, 'acc_test')} with "
            f"{best['trainable']:,} trainable parameters ({best['trainable_pct']:.3f}%)."]
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        moves = []
        for m in ("acc_novel", "acc_test", "i2t_r1", "acc_heldout"):
            p = cmp(("mode_approx", hi["rank"]), ("mode_approx", lo["rank"]), m)
            word = {1: "up", -1: "down", 0: "within noise"}[p.sign]
            moves.append(f"{m} {lo[m]:.3f} -> {hi[m]:.3f} ({word}, 95% CI "
                         + (f"{100 * p.lo:+.1f} to {100 * p.hi:+.1f} points)" if p.lo is not None else "n/a)"))
        text.append(f"From R={lo['rank']} to R={hi['rank']}: " + "; ".join(moves) + ".")
    return text


def _lora(table, cmp: Comparisons) -> list[str]:
    """Mode approx vs LoRA at the nearest parameter count, over ranks and the task metrics."""
    tally = {1: 0, -1: 0, 0: 0}
    per_rank, over = [], []
    for ma in _of(table, "mode_approx"):
        lora = _row(table, "lora", ma.get("lora_rank"))
        if lora is None:
            continue
        votes = [cmp(("mode_approx", ma["rank"]), ("lora", lora["rank"]), m).sign for m in COMPARE]
        for v in votes:
            tally[v] += 1
        per_rank.append(f"R={ma['rank']} (LoRA r={lora['rank']}): {votes.count(1)} better, {votes.count(-1)} worse")
        if lora["trainable"] > 1.5 * ma["trainable"]:
            over.append(ma["rank"])
    if not per_rank:
        return []
    text = [f"Against LoRA at the nearest parameter count, over {', '.join(COMPARE)} (beyond noise): "
            + "; ".join(per_rank) + "."]
    total = sum(tally.values())
    if tally[1] and tally[1] >= max(2 * tally[-1], total / 4):
        text.append("On balance mode approximation comes out ahead, in line with the paper's claim.")
    elif tally[-1] and tally[-1] >= max(2 * tally[1], total / 4):
        text.append("On balance LoRA comes out ahead, unlike the paper's claim that mode approximation matches "
                    "or beats LoRA-style tuning.")
    else:
        text.append("Neither comes out ahead on balance: the paper's advantage over LoRA does not show "
                    "beyond noise at this scale.")
    if over:
        smallest = min(r["trainable"] for r in _of(table, "lora"))
        text.append(f"At R={over} LoRA cannot be made as small (its smallest holds {smallest:,} parameters): "
                    "there mode approximation works with fewer parameters than any LoRA.")
    return text


ABLATIONS = {"mode_approx_cp": "the CP (diagonal-core) form", "mode_approx_noshare": "sharing off",
             "mode_approx_gated": "the gated query transformation", "mode_approx_context": "context enhancement"}


def _ablations(table, cmp: Comparisons) -> list[str]:
    text = []
    for method, what in ABLATIONS.items():
        for row in _of(table, method):
            ref = _row(table, "mode_approx", row["rank"])
            if ref is None:
                continue
            votes = [cmp((method, row["rank"]), ("mode_approx", row["rank"]), m).sign for m in COMPARE]
            verdict = (f"is better on {votes.count(1)} and worse on {votes.count(-1)} of the {len(COMPARE)} task "
                       f"metrics" if any(votes) else "changes nothing beyond noise")
            text.append(f"At R={row['rank']}, {what} {verdict} (novel-class accuracy {fmt(row, 'acc_novel')} vs "
                        f"{fmt(ref, 'acc_novel')}; {row['trainable']:,} vs {ref['trainable']:,} parameters).")
    return text


def _baselines(table, cfg) -> list[str]:
    parts = []
    for method in ("full_ft", "bitfit", "loha", "lokr", "vera", "linear_probe"):
        row = _row(table, method)
        if row is not None:
            parts.append(f"{METHODS[method].label} {fmt(row, 'acc_test')} ({row['trainable']:,} params, "
                         f"heldout {row['acc_heldout']:.3f})")
    text = [f"Baselines (accuracy on {cfg.test_split}): " + "; ".join(parts) + "."] if parts else []
    zs, ma = _row(table, "zero_shot"), _row(table, "mode_approx", cfg.keep_rank)
    if zs and ma:
        cost = zs["acc_heldout"] - ma["acc_heldout"]
        text.append(f"Adapting costs mode approx (R={ma['rank']}) {100 * cost:+.1f} points on heldout "
                    f"({zs['acc_heldout']:.3f} -> {fmt(ma, 'acc_heldout')}).")
    return text
