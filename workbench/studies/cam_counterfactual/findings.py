"""Study 01's findings, written from the numbers with the kit's paired intervals (whatever they say)."""
from __future__ import annotations

from typing import Sequence

from workbench.data import ClassificationData

from .. import kit
from ..kit.claims import Verdict, headline_words, paragraph
from .methods import MASK_METHODS
from .tables import by_method, wise_at


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _row(table: Sequence[dict], method: str) -> dict | None:
    return next((r for r in table if r["method"] == method), None)


def _describe(row: dict, id_split: str, ood: str) -> str:
    return f"{row['label']} {_pct(row[id_split])} ID / {_pct(row[ood])} OOD (± {100 * row[f'{ood}_std']:.1f})"


class Findings:
    """The paragraph and every paired comparison it makes (for result.json's `comparisons` table)."""

    def __init__(self, rows: Sequence[dict], table: Sequence[dict], data: ClassificationData):
        self.rows, self.table, self.data = rows, table, data
        self.id = data.id_split
        self.ood = "ood_avg" if data.ood_splits else data.id_split
        self.comparisons: list[dict] = []

    def paired(self, a: str, b: str, metric: str | None = None) -> kit.Paired:
        p = kit.paired(self.rows, a, b, metric or self.ood)
        self._keep(p)
        return p

    def _keep(self, p: kit.Paired) -> None:
        self.comparisons.append(p.row())

    def versus_wise(self, method: str) -> kit.Paired | None:
        """OOD of `method` minus the same seed's WiSE-FT curve at the method's ID accuracy, paired over seeds."""
        cells = by_method(self.rows)
        if "full_ft" not in cells or method not in cells:
            return None
        diffs = []
        for seed, r in cells[method].items():
            on = wise_at(cells["full_ft"][seed]["wise_curve"], self.id, self.ood, r[self.id])
            if on is None:
                return None
            diffs.append(r[self.ood] - on)
        p = kit.paired_values(diffs, [0.0] * len(diffs), metric=self.ood, names=(method, "wise_ft curve"))
        self._keep(p)
        return p

    def premise(self, p: dict) -> str:
        if not p.get("checked"):
            return "The premise was not checked (full_ft was not run)."
        s = f"Premise: plain FT moves {p['id_split']} from {_pct(p['zero_shot_id'])} (zero-shot) to {_pct(p['ft_id'])}"
        if "shift_split" in p:
            change = self.paired("full_ft", "zero_shot", p["shift_split"])
            s += (f" and {p['shift_split']} from {_pct(p['zero_shot_shift'])} to {_pct(p['ft_shift'])} "
                  f"({change.words()})")
        return s + (" -- it holds." if p["holds"] else " -- it does NOT hold in this run, so the robustness "
                                                       "comparison below has little to protect.")

    def masking(self) -> str:
        out = []
        for m in MASK_METHODS:
            r = _row(self.table, m)
            if r is None:
                continue
            bits = [f"vs {name} {self.paired(m, other).words()}" for other, name in
                    (("full_ft", "FT"), ("zero_shot", "zero-shot"), ("fd", "FD on clean images"))
                    if _row(self.table, other) is not None]
            wise = self.versus_wise(m)
            if wise is not None:
                bits.append(f"vs the WiSE-FT curve at the same ID accuracy {wise.words()}")
            out.append(_describe(r, self.id, self.ood) + ": " + "; ".join(bits))
        return ". ".join(out) + ("." if out else "")

    def detectable(self) -> str:
        d = [c["detectable"] for c in self.comparisons if c["verdict"] == "within noise" and c["detectable"]]
        if not d:
            return ""
        return (f"Comparisons within noise could not resolve differences below about {100 * min(d):.1f} to "
                f"{100 * max(d):.1f} OOD points at this many seeds (80% power).")


def headline(rows: Sequence[dict], table: Sequence[dict], data: ClassificationData,
             verdicts: Sequence[Verdict]) -> str:
    """The report's first screen: where masked distillation lands against FT and zero-shot, then the verdicts
    of the headline claims (the masks against FT, and their own contribution: against FD on clean images)."""
    f = Findings(rows, table, data)
    mask = "mask_fd" if _row(table, "mask_fd") else "mask_fd_cached"
    rm, ft, zs = (_row(table, m) for m in (mask, "full_ft", "zero_shot"))
    at = ""
    if rm is not None and ft is not None and zs is not None:
        loss = zs[f.ood] - ft[f.ood]
        at = (f"{rm['label']} {_pct(rm[f.id])} ID / {_pct(rm[f.ood])} OOD, FT {_pct(ft[f.id])} / {_pct(ft[f.ood])}, "
              f"zero-shot {_pct(zs[f.id])} / {_pct(zs[f.ood])}")
        at += (f": the masks keep {(rm[f.ood] - ft[f.ood]) / loss:.0%} of the {100 * loss:.1f} OOD points FT loses. "
               if loss > 0 else ": FT lost no OOD accuracy here, so there was nothing for the masks to keep. ")
    return at + headline_words(verdicts)


def write(cfg, rows: Sequence[dict], table: Sequence[dict], cost: Sequence[dict], premise: dict,
          data: ClassificationData, verdicts: Sequence[Verdict]) -> tuple[str, list[dict]]:
    """(a short honest paragraph with the numbers, the comparisons it made)."""
    f = Findings(rows, table, data)
    where = (f"the world (finetune p_tie={cfg.p_tie}, backdrop contrast {cfg.backdrop_contrast}, "
             f"{cfg.n_train} images)" if cfg.uses_world else f"ImageFolder {cfg.train_dir}")
    parts = [f"{cfg.model}, {len(cfg.seeds)} seed(s), {cfg.steps} steps x batch {cfg.batch_size}, lr {cfg.lr:g}, "
             f"on {where}; OOD = mean over {', '.join(data.ood_splits) or 'none'}; 'beyond noise' = a paired 95% "
             "interval over seeds and test images that excludes zero.", f.premise(premise)]
    parts.append(paragraph(verdicts))
    parts.append(f"Masked distillation ({cfg.mask_kind} mask, {cfg.fill} fill, threshold {cfg.threshold}, "
                 f"{cfg.cam_method} CAM, w={cfg.w:g}): " + f.masking())
    others = [_describe(r, f.id, f.ood) for r in table if r["method"] not in MASK_METHODS]
    if others:
        parts.append("Others: " + "; ".join(others) + ".")
    ranked = sorted((r for r in table if r["method"] != "zero_shot"), key=lambda r: -r[f.ood])
    if ranked:
        parts.append(f"Best OOD after fine-tuning: {ranked[0]['label']} ({_pct(ranked[0][f.ood])}).")
    c = {r["method"]: r for r in cost}
    if "full_ft" in c and any(m in c for m in MASK_METHODS):
        bits = [f"{c[m]['label']} {c[m]['ratio_to_ft']:.2f}x" for m in MASK_METHODS if m in c]
        once = c.get("mask_fd_cached", {}).get("one_off_seconds", 0.0)
        parts.append(f"Cost per step relative to FT ({c['full_ft']['seconds_per_step']:.2f} s): " + ", ".join(bits)
                     + (f"; the cached teacher CAMs cost {once:.1f} s once." if once else "."))
    parts.append(f.detectable())
    return " ".join(p for p in parts if p), f.comparisons
