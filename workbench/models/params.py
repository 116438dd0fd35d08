"""Counting parameters: every tensor once, however many modules share it."""
from __future__ import annotations

from typing import Iterable

import torch.nn as nn


def unique_parameters(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """`params` without repeats (by identity), in first-seen order."""
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def count_trainable(module: nn.Module) -> int:
    """Values of the parameters that require grad, shared tensors counted once."""
    return sum(p.numel() for p in unique_parameters(module.parameters()) if p.requires_grad)


def count_all(module: nn.Module) -> int:
    """Values of every parameter, shared tensors counted once."""
    return sum(p.numel() for p in unique_parameters(module.parameters()))


def freeze(module: nn.Module) -> None:
    """requires_grad = False for every parameter of `module`."""
    for p in module.parameters():
        p.requires_grad_(False)
