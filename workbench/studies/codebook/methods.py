"""Study 03's methods: id -> the CodebookConfig it trains (the full Uni-Code, baselines, the paper's ablations).

Every entry changes a few `CodebookConfig` fields on top of the study's shared settings (codebook
size, dimension, encoder); the cell then trains, evaluates and measures the same way for all of them
(`cells.run_cell`). `sweep` names the Config field a method runs over: "sizes" (cfg.codes and every
cfg.codebook_sizes) or "codes" (cfg.codes only). `group` places it in a table: the method, a baseline,
or an ablation.

To add a method: register it here (one entry); nothing else in the study changes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

from workbench.methods.codebook import CodebookConfig

from .. import kit
from .cells import run_cell
from .data import select

METHODS = kit.Registry("codebook")

# id -> (label, group, sweep: the Config field of its codebook sizes, CodebookConfig fields changed)
PLAIN = {"quantizer": "vq_ema", "club": False, "cpc": False}  # shared VQ-EMA, reconstruction and commitment only
VARIANTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "unicode": ("Uni-Code (full: MM-EMA, CLUB, Cross-CPC, L_cmcm, reset)", "method", "sizes", {}),
    "plain_vq": ("plain shared VQ-EMA (reconstruction + commitment only)", "baseline", "codes", PLAIN),
    "vq_ema_dcid": ("plain VQ-EMA + DCID (CLUB and Cross-CPC)", "baseline", "codes", {"quantizer": "vq_ema"}),
    "vqtorch": ("vector-quantize-pytorch VQ (k-means, cosine, expiry, rotation)", "baseline", "codes",
                {"quantizer": "vqtorch"}),
    "fsq": ("FSQ (vector-quantize-pytorch)", "baseline", "codes", {"quantizer": "fsq"}),
    "rvq": ("residual VQ, depth 4 (vector-quantize-pytorch)", "baseline", "codes", {"quantizer": "rvq"}),
    "per_modality": ("per-modality codebooks aligned by index", "baseline", "codes", {"quantizer": "per_modality"}),
    "masked_infonce": ("masked cross-modal InfoNCE instead of CLUB + Cross-CPC", "baseline", "codes",
                       {"masked_infonce": True}),
    "no_club": ("without CLUB", "ablation", "codes", {"club": False}),
    "no_cpc": ("without Cross-CPC", "ablation", "codes", {"cpc": False}),
    "no_club_cpc": ("without CLUB and Cross-CPC", "ablation", "codes", {"club": False, "cpc": False}),
    "no_mm_ema": ("without MM-EMA", "ablation", "codes", {"mm_ema": False}),
    "no_reset": ("without reset", "ablation", "codes", {"reset": False}),
    "no_mm_ema_reset": ("without MM-EMA and reset", "ablation", "codes", {"mm_ema": False, "reset": False}),
    "no_cmcm": ("without L_cmcm", "ablation", "codes", {"cmcm": False}),
    "reset_every": ("reset unless every modality used the code (the paper's wording)", "variant", "codes",
                    {"reset_rule": "every"}),
    "club_specific_only": ("CLUB shapes the specific encoder only (semantic input detached)", "variant", "codes",
                           {"club_detach_semantic": True}),
    "cross_09": ("MM-EMA cross weight 0.9 (the authors' 0.5)", "variant", "codes", {"cross_weight": 0.9}),
    # the paper's two-modality setting (Table 2): the headline pair trained and tested on video and audio alone
    "unicode_av": ("Uni-Code, video + audio only", "two modalities", "codes", {}),
    "plain_vq_av": ("plain VQ-EMA, video + audio only", "two modalities", "codes", PLAIN),
}
TWO_MODALITIES = ("video", "audio")
OPTIONAL = ("reset_every", "club_specific_only", "cross_09")  # diagnostics: run by id


def codebook_config(method: str, codes: int, cfg: Any) -> CodebookConfig:
    """The CodebookConfig of one cell: the study's shared settings plus the method's own fields."""
    base = cfg.codebook_config(codes)
    fields = dict(METHODS[method].fields)
    if fields.get("quantizer") == "fsq":
        fields.setdefault("fsq_levels", fsq_levels(codes))
    return replace(base, **fields)


def modalities_of(method: str, cfg: Any) -> tuple[str, ...]:
    """The modalities a method's cells train and test on: video and audio for the two-modality rows."""
    return TWO_MODALITIES if METHODS[method].group == "two modalities" else tuple(cfg.modalities)


def _cell(ctx, cell: kit.Cell) -> dict:
    mods = modalities_of(cell.method, ctx.cfg)
    cfg = ctx.cfg if mods == tuple(ctx.cfg.modalities) else dataclasses.replace(ctx.cfg, modalities=mods)
    splits = ctx.splits if cfg is ctx.cfg else select(ctx.splits, mods)
    return run_cell(cell, cfg, splits, codebook_config(cell.method, cell.setting, cfg), ctx.keep(cell),
                    grad_norm_every=ctx.grad_norm_every(cell))


for _id, (_label, _group, _sweep, _fields) in VARIANTS.items():
    METHODS.register(_id, _label, group=_group, sweep=_sweep, fields=_fields, optional=_id in OPTIONAL)(_cell)


def fsq_levels(codes: int) -> tuple[int, ...]:
    """FSQ levels whose product is close to `codes` (the FSQ paper's recommended level sets)."""
    table = {16: (4, 4), 64: (8, 8), 256: (8, 8, 4), 400: (8, 5, 5, 2), 1000: (8, 5, 5, 5), 1024: (8, 8, 4, 4)}
    best = min(table, key=lambda k: abs(k - codes))
    return table[best]
