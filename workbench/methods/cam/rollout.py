"""Attention-relevance rollout: the CAM the counterfactual-masking paper's code uses.

Following the gradient-weighted rollout of Chefer et al. (2021), as the released code of
"Masked Images Are Counterfactual Samples for Robust Fine-tuning" applies it: starting from
R = I over the T = 1 + N tokens, every block adds relu(dlogit/dA * A) averaged over heads,
propagated through what came before:  R <- R + relu(grad * attn).mean(heads) @ R.
The CLS row of R, without its CLS column, scores the patches.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from ._common import TargetsLike, backend_of, eval_mode, normalize_max, resolve_targets, target_score, tokens_to_grid
from .attention import recorded_attention


def relevance_rollout(classifier: nn.Module, images: torch.Tensor, targets: TargetsLike = None) -> torch.Tensor:
    """Relevance maps (B, g, g) in [0, 1]; targets None = predicted class."""
    backend = backend_of(classifier)
    backend.check_images(images)
    with eval_mode(classifier), recorded_attention(backend.vision_attention) as attn, torch.enable_grad():
        # the input requires grad so the attention does even when every parameter is frozen
        logits = classifier(images.detach().requires_grad_(True))  # (B, C)
        t = resolve_targets(classifier, logits, targets)
        grads = torch.autograd.grad(target_score(logits, t), attn, allow_unused=True)
    return rollout_from_attention(attn, grads, backend.grid_size)


def rollout_from_attention(attn: Sequence[torch.Tensor], grads: Sequence[torch.Tensor | None],
                           grid: int) -> torch.Tensor:
    """Relevance rollout (B, g, g) from each block's attention probabilities (B, heads, T, T) and
    the target logit's gradients with respect to them (None for a block the target never reads)."""
    B, _, T, _ = attn[0].shape
    R = torch.eye(T, device=attn[0].device).expand(B, T, T)  # (B, T, T)
    for a, g in zip(attn, grads):
        if g is None:
            continue
        cam = (g.detach().float() * a.detach().float()).clamp_min(0).mean(1)  # (B, T, T), heads averaged
        R = R + cam @ R
    return normalize_max(tokens_to_grid(R[:, 0, 1:], grid))
