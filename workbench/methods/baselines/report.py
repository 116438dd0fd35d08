"""What every baseline returns: which parameters train, how many, and where they sit.

    report = apply_bitfit(model)
    print(report)  # bitfit: trainable params: 9,856 || all params: 7,781,761 || trainable%: 0.1267
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import torch.nn as nn

from workbench.models.base import ClipBackend


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


def count_trainable(module: nn.Module) -> int:
    """Parameters that require grad (shared tensors counted once)."""
    return sum(p.numel() for p in _unique(module.parameters()) if p.requires_grad)


def count_all(module: nn.Module) -> int:
    return sum(p.numel() for p in _unique(module.parameters()))


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def tower_of(model: ClipBackend, name: str) -> str:
    """'vision' or 'text' for a module/parameter name of `model.model` (either backend)."""
    if model.kind == "hf_clip":
        if name.startswith("vision_model") or name.startswith("visual_projection"):
            return "vision"
        return "text" if name.startswith(("text_model", "text_projection")) else "other"
    if name.startswith("visual."):
        return "vision"
    return "other" if name == "logit_scale" else "text"


def check_towers(towers: Iterable[str]) -> tuple[str, ...]:
    towers = tuple(towers)
    bad = [t for t in towers if t not in ("vision", "text")]
    if bad or not towers:
        raise ValueError(f"towers={towers!r}: accepted are 'vision' and 'text' (at least one)")
    return towers


def make_report(method: str, model: nn.Module, targets: Iterable[str], **details) -> TuningReport:
    return TuningReport(method, count_trainable(model), count_all(model), tuple(targets), details)
