"""Small helpers every CAM method shares: mode and gradient hygiene, targets, normalisation."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn as nn

from workbench.models.modes import eval_mode  # noqa: F401  (re-exported: every CAM method uses it)

TargetsLike = torch.Tensor | Sequence[int] | Sequence[str] | int | str | None


@contextmanager
def untouched_parameters(module: nn.Module) -> Iterator[nn.Module]:
    """Freeze all parameters for the block and restore `requires_grad` and `.grad` afterwards.

    For code we do not control (pytorch-grad-cam calls `zero_grad()` and `backward()`):
    whatever it does, the caller's parameters and gradients come back as they were.
    """
    params = list(module.parameters())
    saved = [(p, p.requires_grad, p.grad) for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag, grad in saved:
            p.requires_grad_(flag)
            p.grad = grad


def backend_of(classifier: nn.Module):
    """The ClipBackend inside an ImageClassifier (or the backend itself)."""
    backend = getattr(classifier, "model", None)
    if backend is None or not hasattr(backend, "vision_blocks"):
        raise TypeError(
            f"expected a workbench.models.ImageClassifier (a CLIP backend + head), got "
            f"{type(classifier).__name__}; build one with ImageClassifier(model, model.zero_shot_head(names))")
    return backend


def resolve_targets(classifier: nn.Module, logits: torch.Tensor, targets: TargetsLike) -> torch.Tensor:
    """Targets as class indices (B,) on the logits' device; None means the predicted class.

    Accepts a (B,) tensor or list of indices, a list of class names (looked up in the head,
    which raises for unknown names), or one index/name for the whole batch.
    """
    B, C = logits.shape
    if targets is None:
        return logits.argmax(-1)
    if isinstance(targets, (str, int)):
        targets = [targets] * B
    if not isinstance(targets, torch.Tensor):
        targets = [classifier.head.class_index(t) if isinstance(t, str) else int(t) for t in targets]
        targets = torch.tensor(targets, dtype=torch.long)
    targets = targets.to(logits.device).long().flatten()
    if targets.numel() != B:
        raise ValueError(f"targets has {targets.numel()} entries but there are {B} images")
    bad = targets[(targets < 0) | (targets >= C)]
    if bad.numel():
        raise ValueError(f"target class {int(bad[0])} is out of range; the classifier has {C} classes")
    return targets


def target_score(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each image's target logit: images are independent, so the
    gradient of the sum gives every image its own gradient."""
    return logits.gather(1, targets[:, None]).sum()


def normalize_max(cam: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Divide each map (B, ...) by its own maximum; an all-zero map stays zero."""
    peak = cam.flatten(1).amax(1).clamp_min(eps)
    return cam / peak.view(-1, *([1] * (cam.ndim - 1)))


def tokens_to_grid(tokens: torch.Tensor, grid: int) -> torch.Tensor:
    """Patch-token scores (B, N) -> (B, g, g), checking that N == g * g."""
    B, N = tokens.shape
    if N != grid * grid:
        raise ValueError(f"{N} patch tokens do not fold into a {grid}x{grid} grid")
    return tokens.reshape(B, grid, grid)
