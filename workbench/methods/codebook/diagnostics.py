"""Which loss pulls the semantic encoders how hard: each loss term's gradient norm, taken separately.

`loss_grad_norms(losses, params)` differentiates every term of one step's Losses on its own (autograd.grad,
the graph kept, nothing accumulated in .grad), so train_unicode can call it on the very step it trains with
(`grad_norm_every`). `grad_norms(model, batch)` is the standalone version: one step in eval mode (no dropout,
no codebook update, no CLUB inner steps, the global RNG left as it was), so it changes nothing in the model.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from workbench.models.modes import eval_mode

from .model import Losses, UniCode


def loss_grad_norms(losses: Losses, params: Iterable[nn.Parameter]) -> dict[str, float]:
    """term -> L2 norm (over all of params) of d term / d params, every term of `losses` (total included).
    A term that does not reach params (switched off, or detached from them) gives 0.0."""
    params = [p for p in params if p.requires_grad]
    out = {}
    for name, value in losses._asdict().items():
        if not (isinstance(value, Tensor) and value.requires_grad) or not params:
            out[name] = 0.0
            continue
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        sq = [g.detach().pow(2).sum() for g in grads if g is not None]
        out[name] = float(torch.stack(sq).sum().sqrt()) if sq else 0.0
    return out


def grad_norms(model: UniCode, batch: Any, params: Iterable[nn.Parameter] | None = None) -> dict[str, float]:
    """loss term -> gradient norm on the semantic encoders' parameters (or `params`) for one batch, computed
    without changing the model (eval mode: no dropout, no codebook update, no CLUB fitting; RNG restored)."""
    params = list(model.semantic_encoders.parameters()) if params is None else list(params)
    with torch.random.fork_rng(devices=[]), eval_mode(model), torch.enable_grad():
        losses = model.step(batch)
        return loss_grad_norms(losses, params)
