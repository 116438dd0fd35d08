"""What every baseline returns: which parameters train, how many, and where they sit.

    report = apply_bitfit(model)
    print(report)  # bitfit: trainable params: 9,856 || all params: 7,781,761 || trainable%: 0.1267
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch.nn as nn

from workbench.models import ClipBackend, check_towers, count_all, count_trainable, freeze

__all__ = ["TuningReport", "check_towers", "count_all", "count_trainable", "freeze", "make_report", "tower_of"]


@dataclass(frozen=True)
class TuningReport:
    """The outcome of `apply_<method>(model, ...)`: exact trainable count and what was adapted."""

    method: str
    trainable: int  # parameters with requires_grad after the method was applied
    total: int  # every parameter of the tuned module (adapters and heads included)
    targets: tuple[str, ...]  # adapted module names (peft tuners) or parameter names (bitfit, probe)
    details: dict[str, Any] = field(default_factory=dict)  # e.g. {"r": 4, "alpha": 4}
    module: nn.Module | None = field(default=None, compare=False, repr=False)  # e.g. the probe

    @property
    def trainable_pct(self) -> float:
        return 100.0 * self.trainable / max(self.total, 1)

    def __str__(self) -> str:  # the line peft's print_trainable_parameters prints
        return (f"{self.method}: trainable params: {self.trainable:,} || all params: {self.total:,} "
                f"|| trainable%: {self.trainable_pct:.4f}")


def tower_of(model: ClipBackend, name: str) -> str:
    """'vision', 'text' or 'other' for a module/parameter name of `model.model` (`model.tower_of(name)`)."""
    return model.tower_of(name)


def make_report(method: str, model: nn.Module, targets: Iterable[str], **details) -> TuningReport:
    return TuningReport(method, count_trainable(model), count_all(model), tuple(targets), details)
