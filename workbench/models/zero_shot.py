"""Zero-shot heads: class weights from text prompts, and an image classifier built on them.

Prompts are the caller's: any class names, any templates (callables `name -> prompt`, or
format strings with one `{}`, as open_clip's zero-shot helper takes them). The world's
prompts are `workbench.world.zero_shot_templates()`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip import build_zero_shot_classifier

from workbench.checks import check_finite, check_number, check_template

from .modes import eval_mode

# `model` below is a workbench.models.ClipBackend; base.py imports this module, not the other way round


class ZeroShotHead(nn.Module):
    """logits = scale * normalize(features) @ W.T, W initialised from class-prompt embeddings."""

    def __init__(self, weight: torch.Tensor, classnames: Sequence[str], scale: float = 100.0,
                 templates: Sequence[Callable | str] | None = None):
        super().__init__()
        check_finite(weight, "weight")
        classnames = _check_classnames(classnames)
        if weight.ndim != 2 or weight.shape[0] != len(classnames):
            raise ValueError(f"weight has shape {tuple(weight.shape)} for {len(classnames)} classnames; accepted: "
                             f"(C, D) with C = {len(classnames)}, one row per class")
        self.weight = nn.Parameter(weight.clone())  # (C, D)
        self.classnames = classnames
        self.scale = float(check_number(float(scale) if isinstance(scale, torch.Tensor) else scale, "scale", gt=0))
        self.templates = tuple(templates) if templates is not None else None  # the prompts W came from

    @classmethod
    @torch.no_grad()
    def from_text(cls, model: nn.Module, classnames: Sequence[str],
                  templates: Sequence[Callable | str]) -> ZeroShotHead:
        """The mean normalised text embedding of each class over `templates`, in eval mode."""
        classnames = _check_classnames(classnames)
        if templates is None or isinstance(templates, str) or len(templates) == 0:
            raise ValueError(f"templates must be a non-empty list of prompts (callables name -> prompt or "
                             f"strings with one {{}}), got {templates!r}; the world's are "
                             "workbench.world.zero_shot_templates()")
        for i, t in enumerate(templates):
            check_template(t, f"templates[{i}]")
        device = next(model.parameters()).device
        with eval_mode(model):
            w = build_zero_shot_classifier(model, model.tokenize, list(classnames), list(templates),
                                           num_classes_per_batch=None, device=device)  # (D, C)
        return cls(w.T.contiguous(), classnames, scale=float(model.logit_scale.exp()), templates=templates)

    def class_index(self, name: str) -> int:
        if name not in self.classnames:
            raise KeyError(f"class {name!r} is not in this head; it knows: {', '.join(self.classnames)}")
        return self.classnames.index(name)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(features, dim=-1) @ F.normalize(self.weight, dim=-1).T


def _check_classnames(classnames) -> tuple[str, ...]:
    """Class names as a tuple of distinct non-empty strings (a repeat would make two classes one name)."""
    if isinstance(classnames, str) or not isinstance(classnames, Sequence) or len(classnames) == 0:
        raise ValueError(f"classnames must be a non-empty list of names, got {classnames!r}")
    names = tuple(classnames)
    bad = [c for c in names if not isinstance(c, str) or not c.strip()]
    if bad:
        raise ValueError(f"classnames={names!r}: {bad[0]!r} is not a name; accepted: non-empty strings")
    twice = [c for i, c in enumerate(names) if c in names[:i]]
    if twice:
        raise ValueError(f"classnames={names!r}: {twice[0]!r} repeats; accepted: distinct names")
    return names


class ImageClassifier(nn.Module):
    """Image tower + head: pixels (B, 3, S, S) -> logits (B, C). What robust fine-tuning trains."""

    def __init__(self, model: nn.Module, head: ZeroShotHead):
        super().__init__()
        self.model = model
        self.head = head

    @property
    def classnames(self) -> tuple[str, ...]:
        return self.head.classnames

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Projected image embedding before normalisation (B, D)."""
        return self.model.encode_image(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
