"""What a path costs: FLOPs counted by `torch.utils.flop_counter`."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from .model import ModularModel


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of `fn()` as FlopCounterMode counts them (matrix multiplications, convolutions, attention).
    Runs with autograd on, even inside an outer no_grad: FlopCounterMode's module tracker fails on
    parameters entering modules under no_grad (torch 2.x), and under no_grad nn.MultiheadAttention takes
    a fused fast path whose attention products it does not see; only the forward is counted."""
    counter = FlopCounterMode(display=False)
    with torch.enable_grad(), counter:
        fn()
    return int(counter.get_total_flops())


def module_flops(model: ModularModel, task: str, path: Sequence[str] | None, batch: Mapping[str, torch.Tensor]) -> int:
    """FLOPs of one forward `model.run(task, batch, path)` (`count_flops`)."""
    return count_flops(lambda: model.run(task, batch, path))
