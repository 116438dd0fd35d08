"""Study 02's adapter settings, shared by its registry and its cells: what a method's setup returns, and the
mode-approximation variants with the ModeApproxConfig each builds."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch.nn as nn


class Setup(NamedTuple):
    objective: nn.Module  # what the engine trains: forward(**batch) -> Loss
    trainable: int
    total: int
    probe: nn.Module | None = None  # the linear probe (classification through its own head)


MODE_APPROX_VARIANTS = {  # method -> (label, sweep, ModeApproxConfig fields it changes)
    "mode_approx": ("mode approx (Tucker core, shared)", "ranks", {}),
    "mode_approx_cp": ("mode approx, CP (diagonal core)", "ablation_ranks", {"form": "cp"}),
    "mode_approx_noshare": ("mode approx, sharing off", "ablation_ranks", {"share": False}),
    "mode_approx_gated": ("mode approx + gated query transf.", "ablation_ranks", {"gated": True}),
    "mode_approx_context": ("mode approx + context enhancement", "ablation_ranks", {"context": True}),
}
# registered, left out of the default sweep for the CPU budget (methods=... runs them): the default keeps
# the question the study asks (mode approx by R against LoRA at matched counts, full fine-tuning, probe)
OPTIONAL = ("mode_approx_cp", "mode_approx_noshare", "mode_approx_gated", "mode_approx_context", "loha", "lokr",
            "vera", "bitfit")


def mode_approx_config(method: str, rank: int, seed: int, cfg: Any):
    """The ModeApproxConfig of a mode-approx method (the variants change one field each)."""
    from workbench.methods.mode_approx import ModeApproxConfig

    return ModeApproxConfig(rank=rank, dropout=cfg.dropout, seed=seed, **MODE_APPROX_VARIANTS[method][2])
