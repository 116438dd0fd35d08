"""Study 02's adapter settings, shared by its registry and its cells: what a method's setup returns, the
mode-approximation variants with the ModeApproxConfig each builds, and the modules they adapt."""
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
# lora_same_sites too: its 4 cells would take the default run from ~6.6 to ~7.7 CPU minutes, ~7.9 as AU-2's side
# with its claim seeds (EVIDENCE.md#methods); it and the AU-2.sites claim run with methods=(..., "lora_same_sites")
OPTIONAL = ("mode_approx_cp", "mode_approx_noshare", "mode_approx_gated", "mode_approx_context", "lora_same_sites",
            "lora_dropout", "loha", "lokr", "vera", "bitfit")


def mode_approx_config(method: str, rank: int, seed: int, cfg: Any):
    """The ModeApproxConfig of a mode-approx method at `cfg.placement` (the variants change one field each)."""
    from workbench.methods.mode_approx import ModeApproxConfig

    return ModeApproxConfig.placed(cfg.placement, rank=rank, dropout=cfg.dropout, seed=seed,
                                   **MODE_APPROX_VARIANTS[method][2])


def mode_approx_sites(model: nn.Module, cfg: Any) -> dict[str, tuple[str, ...]]:
    """The modules (names inside `model.model`) the study's mode approximation adapts, and their matrices: where
    `lora_same_sites` puts LoRA (the placement decides them; the rank does not)."""
    from workbench.methods.mode_approx import adapted_modules

    return adapted_modules(model, mode_approx_config("mode_approx", 1, 0, cfg))
