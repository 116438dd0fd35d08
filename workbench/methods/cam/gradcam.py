"""Grad-CAM on the patch tokens of a CLIP image tower (Selvaraju et al. 2017, on ViT tokens).

The activation is the input of the last block's attention: the output of that block's
first LayerNorm (`ln_1` in open_clip, `layer_norm1` in Hugging Face CLIP). Channel weights
are the gradient of the target logit averaged over the patch tokens (CLS dropped); the map
is ReLU(sum_c w_c A_c), divided by its per-image maximum.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn

from ._common import TargetsLike, backend_of, eval_mode, normalize_max, resolve_targets, target_score, tokens_to_grid


def token_layer(backend) -> nn.Module:
    """The module whose output Grad-CAM reads: the last vision block's first LayerNorm
    (the backend names it: `block_attention_input`)."""
    return backend.block_attention_input(backend.vision_blocks[-1])


@contextmanager
def capture_output(module: nn.Module) -> Iterator[dict]:
    """Record `module`'s output as a fresh leaf that requires grad, whatever the parameters do.

    The recorded tensor *is* what flows on through the network (same values), so the gradient
    of any later score with respect to it is exact, and `torch.autograd.grad` on it never
    touches the parameters' `.grad`. The hook is removed when the block exits.
    """
    store: dict = {}

    def hook(mod, args, out):
        leaf = out.detach().requires_grad_(True)
        store["out"] = leaf
        return leaf

    handle = module.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def gradcam(classifier: nn.Module, images: torch.Tensor, targets: TargetsLike = None) -> torch.Tensor:
    """Grad-CAM maps (B, g, g) in [0, 1] for pixels (B, 3, S, S); targets None = predicted class."""
    backend = backend_of(classifier)
    backend.check_images(images)
    with eval_mode(classifier), capture_output(token_layer(backend)) as store, torch.enable_grad():
        logits = classifier(images)  # (B, C)
        t = resolve_targets(classifier, logits, targets)
        act = store["out"]  # (B, 1 + N, width), batch-first
        (grad,) = torch.autograd.grad(target_score(logits, t), act)
    return gradcam_from_tokens(act, grad, backend.grid_size)


def gradcam_from_tokens(act: torch.Tensor, grad: torch.Tensor, grid: int) -> torch.Tensor:
    """Grad-CAM (B, g, g) from token activations and their gradients, both (B, 1 + N, width).

    For callers that already have both from a forward they need anyway (a training step).
    """
    act, grad = act[:, 1:].detach().float(), grad[:, 1:].detach().float()  # drop CLS: (B, N, width)
    weights = grad.mean(1, keepdim=True)  # (B, 1, width)
    cam = (weights * act).sum(-1).clamp_min(0)  # (B, N)
    return normalize_max(tokens_to_grid(cam, grid))
