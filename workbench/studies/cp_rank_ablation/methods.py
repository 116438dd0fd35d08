"""Study 02's methods: id -> how a cell of it adapts a model copy and what the engine then trains.

Each entry's function takes (model, cell, cfg, classes), changes `model` in place and returns a
`Setup`. `sweep` says over which settings the method runs: "rank" (cfg.ranks), "ablation"
(cfg.ablation_ranks), "matched" (LoRA at the mode-approx budget of each R), "fixed" (its own rank
or none), "none" (no training). `lr` names the Config field holding its learning rate.

To add a method: register it here (one entry); nothing else in the study changes.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch.nn as nn

from workbench.methods import baselines as bl
from workbench.methods.contrastive import ContrastiveObjective
from workbench.models import ClipBackend
from workbench.world import zero_shot_templates

from .. import kit


class Setup(NamedTuple):
    objective: nn.Module  # what the engine trains: forward(**batch) -> Loss
    trainable: int
    total: int
    probe: nn.Module | None = None  # the linear probe (classification through its own head)


METHODS = kit.Registry("cp_rank_ablation")


@METHODS.register("zero_shot", "zero-shot", sweep="none", lr="lr")
def _zero_shot(model: ClipBackend, cell: kit.Cell, cfg: ClipBackend, classes: Sequence[str]) -> Setup:
    return Setup(nn.Identity(), 0, bl.count_all(model))


MODE_APPROX_VARIANTS = {  # method -> (label, sweep, ModeApproxConfig fields it changes)
    "mode_approx": ("mode approx (Tucker core, shared)", "rank", {}),
    "mode_approx_cp": ("mode approx, CP (diagonal core)", "ablation", {"form": "cp"}),
    "mode_approx_noshare": ("mode approx, sharing off", "ablation", {"share": False}),
    "mode_approx_gated": ("mode approx + gated query transf.", "ablation", {"gated": True}),
    "mode_approx_context": ("mode approx + context enhancement", "ablation", {"context": True}),
}
# registered, left out of the default sweep for the CPU budget (methods=... runs them): the default keeps
# the question the study asks (mode approx by R against LoRA at matched counts, full fine-tuning, probe)
OPTIONAL = ("mode_approx_cp", "mode_approx_noshare", "mode_approx_gated", "mode_approx_context", "loha", "lokr",
            "vera", "bitfit")


def mode_approx_config(method: str, rank: int, seed: int, cfg: Any):
    """The ModeApproxConfig of a mode-approx method (the variants change one field each)."""
    from workbench.methods.mode_approx import ModeApproxConfig

    return ModeApproxConfig(rank=rank, dropout=cfg.dropout, seed=seed, **MODE_APPROX_VARIANTS[method][2])


def _mode_approx(model: ClipBackend, cell: kit.Cell, cfg: ClipBackend, classes: Sequence[str]) -> Setup:
    from workbench.methods.mode_approx import inject_mode_approx, objective_for

    macfg = mode_approx_config(cell.method, cell.setting, cell.seed, cfg)
    rep = inject_mode_approx(model, macfg)
    return Setup(objective_for(model, macfg), rep.trainable_params, rep.total_params)


for _id, (_label, _sweep, _) in MODE_APPROX_VARIANTS.items():
    METHODS.register(_id, _label, sweep=_sweep, lr="lr", mode_approx=True)(_mode_approx)


def _contrastive(report: bl.TuningReport, model: ClipBackend) -> Setup:
    return Setup(ContrastiveObjective(model), report.trainable, report.total)


@METHODS.register("lora", "LoRA (peft, attention; nearest count to R's budget)", sweep="matched", lr="lr")
def _lora(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lora(model, r=cell.setting, rslora=cfg.lora_rslora), model)


@METHODS.register("loha", "LoHa (peft, linear layers)", sweep="fixed", lr="lr", rank_field="loha_rank")
def _loha(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_loha(model, r=cell.setting), model)


@METHODS.register("lokr", "LoKr (peft, linear layers)", sweep="fixed", lr="lr", rank_field="lokr_rank")
def _lokr(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lokr(model, r=cell.setting), model)


@METHODS.register("vera", "VeRA (peft, linear layers)", sweep="fixed", lr="lr", rank_field="vera_rank")
def _vera(model, cell, cfg, classes) -> Setup:  # the seed also draws VeRA's frozen random projections
    return _contrastive(bl.apply_vera(model, r=cell.setting, projection_seed=cell.seed), model)


@METHODS.register("bitfit", "BitFit (biases)", sweep="fixed", lr="lr")
def _bitfit(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_bitfit(model), model)


@METHODS.register("linear_probe", "linear probe (classification only)", sweep="fixed", lr="probe_lr")
def _linear_probe(model, cell, cfg, classes) -> Setup:
    rep = bl.apply_linear_probe(model, classes, zero_shot_templates())
    return Setup(bl.LinearProbeObjective(rep.module), rep.trainable, rep.total, rep.module)


@METHODS.register("full_ft", "full fine-tuning", sweep="fixed", lr="full_ft_lr")
def _full_ft(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_full_finetune(model), model)
