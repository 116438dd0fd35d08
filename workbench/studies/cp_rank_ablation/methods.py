"""Study 02's methods: id -> how a cell of it adapts a model copy and what the engine then trains.

Each entry's `setup(model, cell, cfg, classes)` changes `model` in place and returns a `Setup`; the
cell itself (train, measure) is the same for all of them (`cells.run_cell`). `sweep` names the Config
field of its ranks: "ranks", "ablation_ranks", "lora_ranks" (the context's LoRA ranks matched to the
mode-approx budget of each R), "lora_sites_ranks" (the same for LoRA on mode approximation's own modules), a scalar
rank field ("loha_rank"), or none (rank-free); zero-shot is
unseeded (no training). `lr` names the Config field holding its learning rate.

To add a method: register its setup here (one entry); nothing else in the study changes.
"""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from workbench.methods import baselines as bl
from workbench.methods.contrastive import ContrastiveObjective
from workbench.models import ClipBackend
from workbench.world import zero_shot_templates

from .. import kit
from .adapters import MODE_APPROX_VARIANTS, OPTIONAL, Setup, mode_approx_config, mode_approx_sites
from .cells import run_cell

METHODS = kit.Registry("cp_rank_ablation")


def _cell(ctx, cell: kit.Cell) -> dict:
    return run_cell(cell, METHODS[cell.method], ctx.cfg, ctx.base, ctx.streams.get(cell.seed), ctx.data,
                    ctx.keep(cell), ctx.val)


def method(id: str, label: str, *, sweep: str | None = None, seeded: bool = True, optional: bool = False, **info):
    """Register a method by its setup function; its cell is the study's one train-and-measure cell."""
    def add(setup):
        METHODS.register(id, label, sweep=sweep, seeded=seeded, optional=optional, setup=setup, **info)(_cell)
        return setup
    return add


@method("zero_shot", "zero-shot", seeded=False, lr="lr")
def _zero_shot(model: ClipBackend, cell: kit.Cell, cfg: ClipBackend, classes: Sequence[str]) -> Setup:
    return Setup(nn.Identity(), 0, bl.count_all(model))


def _mode_approx(model: ClipBackend, cell: kit.Cell, cfg: ClipBackend, classes: Sequence[str]) -> Setup:
    from workbench.methods.mode_approx import inject_mode_approx, objective_for

    macfg = mode_approx_config(cell.method, cell.setting, cell.seed, cfg)
    rep = inject_mode_approx(model, macfg)
    return Setup(objective_for(model, macfg), rep.trainable_params, rep.total_params)


for _id, (_label, _sweep, _) in MODE_APPROX_VARIANTS.items():
    method(_id, _label, sweep=_sweep, optional=_id in OPTIONAL, lr="lr", mode_approx=True)(_mode_approx)


def _contrastive(report: bl.TuningReport, model: ClipBackend) -> Setup:
    return Setup(ContrastiveObjective(model), report.trainable, report.total)


@method("lora", "LoRA (peft, attention; nearest count to R's budget)", sweep="lora_ranks", lr="lr")
def _lora(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lora(model, r=cell.setting, rslora=cfg.lora_rslora), model)


# LoRA exactly where mode approximation puts its updates (cfg.placement decides; rank matched to the same budget):
# the like-for-like comparison. peft updates an nn.MultiheadAttention's q, k, v together through in_proj.
@method("lora_same_sites", "LoRA (peft) on mode approx's modules; nearest count to R's budget",
        sweep="lora_sites_ranks", optional=True, lr="lr")
def _lora_same_sites(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lora(model, r=cell.setting, rslora=cfg.lora_rslora,
                                      sites=mode_approx_sites(model, cfg)), model)


# the same at mode approximation's dropout (cfg.dropout): peft applies it on nn.Linear sites only (the MLP on
# open_clip; a MultiheadAttention's update is merged before the fused call), mode approx on every U(x)
@method("lora_dropout", "LoRA (peft) on mode approx's modules, at its dropout", sweep="lora_sites_ranks",
        optional=True, lr="lr")
def _lora_dropout(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lora(model, r=cell.setting, rslora=cfg.lora_rslora, dropout=cfg.dropout,
                                      sites=mode_approx_sites(model, cfg)), model)


@method("loha", "LoHa (peft, linear layers)", sweep="loha_rank", optional=True, lr="lr")
def _loha(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_loha(model, r=cell.setting), model)


@method("lokr", "LoKr (peft, linear layers)", sweep="lokr_rank", optional=True, lr="lr")
def _lokr(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_lokr(model, r=cell.setting), model)


@method("vera", "VeRA (peft, linear layers)", sweep="vera_rank", optional=True, lr="lr")
def _vera(model, cell, cfg, classes) -> Setup:  # the seed also draws VeRA's frozen random projections
    return _contrastive(bl.apply_vera(model, r=cell.setting, projection_seed=cell.seed), model)


@method("bitfit", "BitFit (biases)", optional=True, lr="lr")
def _bitfit(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_bitfit(model), model)


@method("linear_probe", "linear probe (classification only)", lr="probe_lr")
def _linear_probe(model, cell, cfg, classes) -> Setup:
    rep = bl.apply_linear_probe(model, classes, zero_shot_templates())
    return Setup(bl.LinearProbeObjective(rep.module), rep.trainable, rep.total, rep.module)


@method("full_ft", "full fine-tuning", lr="full_ft_lr")
def _full_ft(model, cell, cfg, classes) -> Setup:
    return _contrastive(bl.apply_full_finetune(model), model)
