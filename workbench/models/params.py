"""Counting parameters: every tensor once, however many modules share it."""
from __future__ import annotations

from typing import Iterable

import torch.nn as nn

# class attribute a workbench adapter layer carries (mode approximation's wrappers): its method's name
ADAPTER_ATTR = "workbench_adapter"


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


class AdapterError(ValueError, RuntimeError):
    """A model that already carries an adapter was asked to take another one."""


def existing_adapter(module: nn.Module) -> str | None:
    """What adapter `module` already carries, e.g. "peft LoraLayer at 'visual.transformer...'", or None.

    Sees peft tuner layers (LoRA, LoHa, LoKr, VeRA, ...: peft's BaseTunerLayer) and workbench
    adapter layers (classes with a `workbench_adapter` attribute: mode approximation).
    """
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # no peft, no peft adapters
        BaseTunerLayer = ()
    if getattr(module, "mode_approx_config", None) is not None:
        return "mode approximation (mode_approx_config is set)"
    for name, m in module.named_modules():
        kind = getattr(type(m), ADAPTER_ATTR, None)
        if kind:
            return f"{kind} ({type(m).__name__} at {name!r})"
        if BaseTunerLayer and isinstance(m, BaseTunerLayer):
            parts = type(m).__module__.split(".")  # peft.tuners.<tuner>.layer
            tuner = f"{parts[2]} " if len(parts) > 2 and parts[1] == "tuners" else ""
            return f"peft {tuner}layer {type(m).__name__} at {name!r}"
    return None


def refuse_second_adapter(module: nn.Module, method: str) -> None:
    """Raise AdapterError if `module` already carries an adapter: a second one would reset or freeze it."""
    found = existing_adapter(module)
    if found is not None:
        raise AdapterError(
            f"cannot apply {method}: the model already carries an adapter, {found}; adapting it again would "
            f"reset or freeze the first one. Start from a fresh model (load_model(...) or model.copy() "
            f"before adapting)")
