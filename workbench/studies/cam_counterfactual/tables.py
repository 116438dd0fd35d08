"""Study 01's tables: methods over seeds, the WiSE-FT curve, the cost of CAMs, and the premise."""
from __future__ import annotations

import statistics
from typing import Any, Mapping, Sequence

from workbench.data import ClassificationData

from .. import kit
from .methods import METHODS


def by_method(rows: Sequence[dict]) -> dict[str, dict[int | None, dict]]:
    """Rows as method -> seed -> row (zero-shot, run once, under seed None)."""
    out: dict[str, dict[int | None, dict]] = {}
    for r in rows:
        out.setdefault(r["method"], {})[r["seed"]] = r
    return out


def results_table(rows: Sequence[dict], splits: Sequence[str]) -> list[dict]:
    """One row per method: mean, std and 95% interval over seeds of every split's accuracy, seconds per step."""
    out = []
    for row in kit.summarise(rows, (*splits, "seconds_per_step"), by=("method",)):
        method = row.pop("method")
        out.append({"method": method, "label": METHODS[method].label, **row})
    return out


def wise_curve_table(ft_rows: Sequence[dict], splits: Sequence[str]) -> list[dict]:
    """One row per alpha: accuracies averaged over seeds (with std and interval)."""
    points = [{**p, "method": "wise_ft", "seed": r["seed"]} for r in ft_rows for p in r["wise_curve"]]
    return kit.summarise(points, splits, by=("alpha",))


def cost_table(rows: Sequence[dict]) -> list[dict]:
    """Seconds per training step of every trained method, as a ratio to plain FT, plus one-off costs."""
    cells = by_method(rows)
    base = None
    if "full_ft" in cells:
        base = statistics.fmean(c["seconds_per_step"] for c in cells["full_ft"].values())
    out = []
    for method, per_seed in cells.items():
        sps = [c["seconds_per_step"] for c in per_seed.values() if c.get("seconds_per_step")]
        if not sps:
            continue
        s = statistics.fmean(sps)
        once = [c["teacher_cam_seconds"] for c in per_seed.values() if "teacher_cam_seconds" in c]
        out.append({"method": method, "label": METHODS[method].label, "seconds_per_step": s,
                    "ratio_to_ft": s / base if base else None, "one_off_seconds": max(once) if once else 0.0,
                    "cached_cells": sum(bool(c.get("cached")) for c in per_seed.values())})
    return out


def _mean(cells: Mapping[str, Mapping[Any, dict]], method: str, split: str) -> float:
    return statistics.fmean(c[split] for c in cells[method].values())


def check_premise(rows: Sequence[dict], data: ClassificationData) -> dict:
    """Does plain FT raise ID accuracy over zero-shot and lower it under the shift?"""
    cells = by_method(rows)
    if "full_ft" not in cells:
        return {"checked": False, "why": "full_ft was not run"}
    shift = "ood_flipped" if "ood_flipped" in data.ood_splits else ("ood_avg" if data.ood_splits else None)
    zs_id, ft_id = _mean(cells, "zero_shot", data.id_split), _mean(cells, "full_ft", data.id_split)
    out = {"checked": True, "id_split": data.id_split, "zero_shot_id": zs_id, "ft_id": ft_id,
           "id_gain": ft_id - zs_id}
    if shift is not None:
        zs_s, ft_s = _mean(cells, "zero_shot", shift), _mean(cells, "full_ft", shift)
        out.update({"shift_split": shift, "zero_shot_shift": zs_s, "ft_shift": ft_s, "shift_change": ft_s - zs_s})
        p = kit.paired(rows, "full_ft", "zero_shot", shift)
        out.update({"shift_change_ci": None if p.lo is None else [p.lo, p.hi], "shift_verdict": p.verdict})
    out["holds"] = bool(out["id_gain"] > 0 and out.get("shift_change", -1.0) < 0)
    return out


def wise_at(curve: Sequence[dict], id_split: str, ood: str, x: float) -> float | None:
    """OOD accuracy of a WiSE-FT curve at ID accuracy x (linear between alphas); None off the curve."""
    pts = sorted((c[id_split], c[ood]) for c in curve)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def localization_rows(zero_shot, models: Mapping[str, Any], world, split: str, n: int,
                      methods: Sequence[str]) -> list[dict]:
    """IoU and pointing game of every CAM method on the zero-shot model (with the centre-prior
    baseline), then `gradcam` and `rollout` on each other model of `models` (name -> classifier)."""
    from workbench.eval.localization import localization_table

    rows = localization_table(zero_shot, world, split, n=n, methods=methods, progress=False)
    for name, clf in models.items():
        if clf is zero_shot:
            continue
        rows += [{**r, "method": f"{r['method']} ({name})"}
                 for r in localization_table(clf, world, split, n=n, methods=("gradcam", "rollout"), progress=False)
                 if r["method"] != "centre_prior"]
    return rows


def photo_rows(photos: Sequence) -> list[dict]:
    """The real-photo masking table: per photo its top class, the top-class probability clean, with the
    object masked and with the context masked, and whether the claim (masking the object hurts more
    than masking the context) holds on it. `photos`: `workbench.methods.cam.real_photo.PhotoMasking`s."""
    return [{"photo": p.name, "top class": p.top_class, "p clean": p.prob_clean,
             "p object masked": p.prob_object_masked, "p context masked": p.prob_context_masked,
             "object mask patches": int(p.object_mask.sum()), "patches": p.object_mask.numel(),
             "claim holds": p.prob_object_masked < p.prob_context_masked} for p in photos]
