"""WiSE-FT (Wortsman et al. 2022): interpolate zero-shot and fine-tuned weights, all of them.

    theta(alpha) = (1 - alpha) * theta_zeroshot + alpha * theta_finetuned

alpha = 0 is the zero-shot model, alpha = 1 the fine-tuned one; the head is interpolated too.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn as nn


def wise_state(zero_shot: Mapping[str, torch.Tensor], fine_tuned: Mapping[str, torch.Tensor],
               alpha: float) -> dict[str, torch.Tensor]:
    """The interpolated state dict: a pure function of two state dicts with the same keys and shapes.

    Floating-point tensors are interpolated; others (integer buffers) are taken from `fine_tuned`.
    """
    if not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} is outside [0, 1] (0 = zero-shot, 1 = fine-tuned)")
    if set(zero_shot) != set(fine_tuned):
        diff = sorted(set(zero_shot) ^ set(fine_tuned))
        raise ValueError(f"the two state dicts have different keys, e.g. {diff[:3]}: not the same model")
    out = {}
    for k, ft in fine_tuned.items():
        zs = zero_shot[k]
        if zs.shape != ft.shape:
            raise ValueError(f"{k!r} is {tuple(zs.shape)} in the zero-shot model but {tuple(ft.shape)} fine-tuned")
        out[k] = torch.lerp(zs.to(ft.dtype), ft, float(alpha)) if ft.is_floating_point() else ft.clone()
    return out


def wise_ft(zero_shot: nn.Module, fine_tuned: nn.Module, alpha: float, out: nn.Module | None = None) -> nn.Module:
    """The WiSE-FT model at `alpha`; `out` (a model of the same architecture) is reused if given."""
    if out is None:
        from .classifier import clone_module

        out = clone_module(fine_tuned)
    out.load_state_dict(wise_state(zero_shot.state_dict(), fine_tuned.state_dict(), alpha))
    return out
