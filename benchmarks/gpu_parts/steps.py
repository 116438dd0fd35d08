"""The engine's training step, built once per objective and run on batches already on the device."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
from accelerate import Accelerator

from workbench.engine import TrainConfig, make_optimizer, training_step, trusted_inputs


class EngineStep:
    """`workbench.engine.training_step` on one objective: prepared by accelerate (autocast, device), AdamW
    from `make_optimizer` (fused on CUDA), grad clipping at the engine's default, a constant schedule.

    Calls run inside `trusted_inputs()`, as the engine's loop after its first step: check the batch
    once (`model.check_images`) before timing.
    """

    def __init__(self, acc: Accelerator, objective: nn.Module, lr: float = 1e-5):
        self.acc = acc
        named = [(n, p) for n, p in objective.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError(f"{type(objective).__name__} has no trainable parameter")
        self.cfg = TrainConfig(steps=1, lr=lr)
        opt = make_optimizer(named, self.cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        self.eager, self.opt, self.sched = acc.prepare(objective, opt, sched)
        self.eager.train()
        self.clip = [p for _, p in named]
        self.fused = bool(opt.defaults.get("fused"))
        self._compiled: nn.Module | None = None

    def __call__(self, batch: dict[str, Any], compiled: bool | str = False) -> None:
        model = self.compiled_model(compiled) if compiled else self.eager
        with trusted_inputs():
            training_step(self.acc, model, batch, self.opt, self.sched, self.clip, self.cfg.grad_clip)

    def compiled_model(self, backend: bool | str = True) -> nn.Module:
        """torch.compile of the prepared objective (True: inductor; a str: that backend), built once."""
        if self._compiled is None:
            self._compiled = torch.compile(self.eager, **({"backend": backend} if isinstance(backend, str) else {}))
        return self._compiled

    def bound(self, batch: dict[str, Any], compiled: bool | str = False) -> Callable[[], None]:
        return lambda: self(batch, compiled)


def forward_backward(acc: Accelerator, objective: nn.Module, batch: dict[str, Any]) -> Callable[[], None]:
    """One forward + backward of `objective` (no optimizer): what FLOPs are counted on."""

    def run() -> None:
        with trusted_inputs(), acc.autocast():
            out = objective(**batch)
        loss = out.loss if hasattr(out, "loss") else out
        loss.backward()
        objective.zero_grad(set_to_none=True)

    return run
