"""What a path costs: FLOPs counted by `torch.utils.flop_counter`."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from .model import ModularModel


def module_flops(model: ModularModel, task: str, path: Sequence[str] | None, batch: Mapping[str, torch.Tensor]) -> int:
    """FLOPs of one forward `model.run(task, batch, path)`, as FlopCounterMode counts them (matrix
    multiplications, convolutions, attention). Runs with autograd on, even inside an outer no_grad:
    FlopCounterMode's module tracker fails on parameters entering modules under no_grad (torch 2.x);
    only the forward is counted."""
    counter = FlopCounterMode(display=False)
    with torch.enable_grad(), counter:
        model.run(task, batch, path)
    return int(counter.get_total_flops())
