"""Choosing study 04's optimisation on the validation slice: train the modular model once per candidate
setting and score every task there (never on the test sets the cells report)."""
from __future__ import annotations

import dataclasses
import statistics
from typing import Any, Sequence

import torch

from workbench.models import ClipBackend
from workbench.world import World, WorldConfig

from .data import val_data
from .measure import SCORE, evaluate
from .train import task_path, train_modular


def validation_scores(cfg: Any, base: ClipBackend, candidates: Sequence[dict[str, Any]], seed: int = 0,
                      ) -> list[dict]:
    """One row per candidate (Config overrides, e.g. {"new_lr": 1e-3}): the modular model with temporal
    modules at k = default_k trained by `cfg` with those overrides, each task's validation score, their
    mean (`val_mean`) and the final training loss."""
    world = World(WorldConfig(seed=cfg.world_seed))
    data = val_data(cfg, world, base)
    rows = []
    for overrides in candidates:
        c = dataclasses.replace(cfg, **overrides)
        trained = train_modular(base, world, c, c.default_k, True, seed)
        with torch.no_grad():
            metrics, _ = evaluate(trained.model, data, {t: task_path(t, True) for t in c.tasks}, c.qa_scoring)
        scores = {t: metrics[SCORE[t]] for t in c.tasks}
        rows.append({**overrides, **scores, "val_mean": statistics.fmean(scores.values()),
                     "final_loss": sum(trained.losses[-len(c.tasks):]), "train_seconds": trained.seconds})
    return rows
