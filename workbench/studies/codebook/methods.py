"""Study 03's methods: id -> the CodebookConfig it trains (the full Uni-Code, baselines, the paper's ablations).

Every entry changes a few `CodebookConfig` fields on top of the study's shared settings (codebook
size, dimension, encoder); the cell then trains, evaluates and measures the same way for all of them.
`sweep` says over which settings a method runs: "size" (cfg.codebook_sizes, besides cfg.codes) or
"fixed" (cfg.codes only). `group` places it in a table: the method, a baseline, or an ablation.

To add a method: register it here (one entry); nothing else in the study changes.
"""
from __future__ import annotations

from functools import partial
from typing import Any

from .. import kit

METHODS = kit.Registry("codebook")

# id -> (label, group, sweep, CodebookConfig fields changed)
VARIANTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "unicode": ("Uni-Code (full: MM-EMA, CLUB, Cross-CPC, reset)", "method", "size", {}),
    "vq_ema": ("plain shared VQ-EMA", "baseline", "fixed", {"quantizer": "vq_ema"}),
    "vqtorch": ("vector-quantize-pytorch VQ (k-means, cosine, expiry, rotation)", "baseline", "fixed",
                {"quantizer": "vqtorch"}),
    "fsq": ("FSQ (vector-quantize-pytorch)", "baseline", "fixed", {"quantizer": "fsq"}),
    "rvq": ("residual VQ, depth 4 (vector-quantize-pytorch)", "baseline", "fixed", {"quantizer": "rvq"}),
    "per_modality": ("per-modality codebooks aligned by index", "baseline", "fixed", {"quantizer": "per_modality"}),
    "masked_infonce": ("masked cross-modal InfoNCE instead of CLUB + Cross-CPC", "baseline", "fixed",
                       {"masked_infonce": True}),
    "no_club": ("without CLUB", "ablation", "fixed", {"club": False}),
    "no_cpc": ("without Cross-CPC", "ablation", "fixed", {"cpc": False}),
    "no_club_cpc": ("without CLUB and Cross-CPC", "ablation", "fixed", {"club": False, "cpc": False}),
    "no_mm_ema": ("without MM-EMA", "ablation", "fixed", {"mm_ema": False}),
    "no_reset": ("without reset", "ablation", "fixed", {"reset": False}),
    "no_mm_ema_reset": ("without MM-EMA and reset", "ablation", "fixed", {"mm_ema": False, "reset": False}),
    "cross_09": ("MM-EMA cross weight 0.9 (the authors' 0.5)", "ablation", "fixed", {"cross_weight": 0.9}),
}


def codebook_config(method: str, codes: int, cfg: Any):
    """The CodebookConfig of one cell: the study's shared settings plus the method's own fields."""
    from dataclasses import replace

    from workbench.methods.codebook import CodebookConfig

    base = CodebookConfig(dim=cfg.dim, codes=codes, specific_dim=cfg.dim, layers=cfg.layers, heads=cfg.heads,
                          encoder=cfg.encoder, reset_after=cfg.reset_after)
    fields = dict(METHODS[method].fields)
    if fields.get("quantizer") == "fsq":
        fields.setdefault("fsq_levels", fsq_levels(codes))
    return replace(base, **fields)


for _id, (_label, _group, _sweep, _fields) in VARIANTS.items():
    METHODS.register(_id, _label, group=_group, sweep=_sweep, fields=_fields)(partial(codebook_config, _id))


def fsq_levels(codes: int) -> tuple[int, ...]:
    """FSQ levels whose product is close to `codes` (the FSQ paper's recommended level sets)."""
    table = {16: (4, 4), 64: (8, 8), 256: (8, 8, 4), 400: (8, 5, 5, 2), 1000: (8, 5, 5, 5), 1024: (8, 8, 4, 4)}
    best = min(table, key=lambda k: abs(k - codes))
    return table[best]
