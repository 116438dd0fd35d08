"""Study 03's methods: id -> the CodebookConfig it trains (the full Uni-Code, baselines, the paper's ablations).

Every entry changes a few `CodebookConfig` fields on top of the study's shared settings (codebook
size, dimension, encoder); the cell then trains, evaluates and measures the same way for all of them
(`cells.run_cell`). `sweep` names the Config field a method runs over: "sizes" (cfg.codes and every
cfg.codebook_sizes) or "codes" (cfg.codes only). `group` places it in a table: the method, a baseline,
or an ablation.

To add a method: register it here (one entry); nothing else in the study changes.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from workbench.methods.codebook import CodebookConfig

from .. import kit
from .cells import run_cell

METHODS = kit.Registry("codebook")

# id -> (label, group, sweep: the Config field of its codebook sizes, CodebookConfig fields changed)
VARIANTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "unicode": ("Uni-Code (full: MM-EMA, CLUB, Cross-CPC, reset)", "method", "sizes", {}),
    "vq_ema": ("plain shared VQ-EMA", "baseline", "codes", {"quantizer": "vq_ema"}),
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
    "cross_09": ("MM-EMA cross weight 0.9 (the authors' 0.5)", "ablation", "codes", {"cross_weight": 0.9}),
}


def codebook_config(method: str, codes: int, cfg: Any) -> CodebookConfig:
    """The CodebookConfig of one cell: the study's shared settings plus the method's own fields."""
    base = CodebookConfig(dim=cfg.dim, codes=codes, specific_dim=cfg.dim, layers=cfg.layers, heads=cfg.heads,
                          encoder=cfg.encoder, reset_after=cfg.reset_after)
    fields = dict(METHODS[method].fields)
    if fields.get("quantizer") == "fsq":
        fields.setdefault("fsq_levels", fsq_levels(codes))
    return replace(base, **fields)


def _cell(ctx, cell: kit.Cell) -> dict:
    return run_cell(cell, ctx.cfg, ctx.splits, codebook_config(cell.method, cell.setting, ctx.cfg),
                    ctx.keep(cell))


for _id, (_label, _group, _sweep, _fields) in VARIANTS.items():
    METHODS.register(_id, _label, group=_group, sweep=_sweep, fields=_fields)(_cell)


def fsq_levels(codes: int) -> tuple[int, ...]:
    """FSQ levels whose product is close to `codes` (the FSQ paper's recommended level sets)."""
    table = {16: (4, 4), 64: (8, 8), 256: (8, 8, 4), 400: (8, 5, 5, 2), 1000: (8, 5, 5, 5), 1024: (8, 8, 4, 4)}
    best = min(table, key=lambda k: abs(k - codes))
    return table[best]
