"""The claims of "Masked Images Are Counterfactual Samples for Robust Fine-tuning" (CVPR 2023), as the kit judges them.

Ids from the design notes' inventory. The paper's numbers are its CLIP ViT-B/16 on ImageNet
(ID / OOD average over five shifts, its Table 1): zero-shot 68.3 / 58.7, FT 81.3 / 54.9, LP-FT
81.7 / 60.3, WiSE-FT about 81.7 / 63.0, FLYP about 82.6 / 60. Here OOD is `ood_avg`, the mean over
the world's OOD splits.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import kit
from .tables import by_method, wise_at

MCF = "Xiao et al., CVPR 2023"
ID, OOD = "id_test", "ood_avg"


def versus_wise(method: str):
    """OOD of `method` minus the same seed's WiSE-FT curve at the method's ID accuracy, paired over seeds."""
    def test(rows: Sequence[dict], cfg: Any) -> kit.Paired:
        cells = by_method(rows)
        if "full_ft" not in cells or method not in cells:
            raise KeyError(f"no rows of {method!r} and full_ft (its WiSE-FT curve)")
        diffs = []
        for seed, r in cells[method].items():
            on = wise_at(cells["full_ft"][seed]["wise_curve"], ID, OOD, r[ID])
            if on is None:
                raise KeyError(f"{method!r}'s ID accuracy is outside the WiSE-FT curve of seed {seed}")
            diffs.append(r[OOD] - on)
        return kit.paired_values(diffs, [0.0] * len(diffs), metric=OOD, names=(method, "WiSE-FT curve"))
    return test


CLAIMS = (
    kit.Claim("MCF-1", MCF, "fine-tuning on narrow data lowers robustness (the shortcut: object on another context)",
              a="full_ft", b="zero_shot", metric="ood_flipped", direction="<",
              paper_value="FT 54.9 vs zero-shot 58.7 OOD avg (ViT-B/16, ImageNet)", paper_table="Table 1"),
    kit.Claim("MCF-2", MCF, "distilling on CAM-masked counterfactual images keeps the OOD accuracy FT loses",
              a="mask_fd", b="full_ft", metric=OOD, direction=">", headline=True,
              paper_value="FT loses 3.8 OOD points (58.7 -> 54.9) that the method keeps", paper_table="Table 1"),
    kit.Claim("MCF-5", MCF, "it is the masked (counterfactual) images that protect robustness, not distillation alone",
              a="mask_fd", b="fd", metric=OOD, direction=">", headline=True,
              paper_value="FT_FD is the authors' baseline (run.sh); its number was not read", paper_table="run.sh"),
    kit.Claim("MCF-3", MCF, "a better ID-OOD trade-off than weight-space ensembling (WiSE-FT)",
              test=versus_wise("mask_fd"), cells=("mask_fd", "full_ft"), metric=OOD, direction=">",
              paper_value="WiSE-FT about 81.7 / 63.0 ID / OOD avg", paper_table="Table 1",
              note="OOD minus the same seed's WiSE-FT curve at the method's ID accuracy"),
    kit.Claim("MCF-4", MCF, "the method also improves downstream (ID) accuracy", a="mask_fd", b="zero_shot",
              metric=ID, direction=">", paper_value="ID above zero-shot 68.3", paper_table="Table 1"),
    kit.Claim("MCF-8", MCF, "the fine-tuned model relies on the object, not the context",
              a="mask_fd", b="full_ft", metric="ood_flipped", direction=">",
              paper_value="argued, not measured (seed 000, para 10)"),
)
