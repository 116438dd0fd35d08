"""Classifiers for robust fine-tuning: image tower + a head initialised from zero-shot text embeddings.

The zero-shot classifier is both every method's starting point and the frozen teacher of the
distillation methods. Helpers here choose which parameters a method trains (image tower, text
tower, head) by setting `requires_grad`, which is what `workbench.engine.train` reads.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch.nn as nn

from workbench.models import ClipBackend, ImageClassifier, copy_module


def clone_module(module: nn.Module) -> nn.Module:
    """A deep copy of a backend or of a module holding backends (an ImageClassifier) that shares
    the backends' read-only tokenizers (`workbench.models.copy_module`; a backend alone: `backend.copy()`)."""
    return copy_module(module)


def zero_shot_classifier(model: ClipBackend, classnames: Sequence[str], templates: Sequence[Callable | str],
                         inplace: bool = False) -> ImageClassifier:
    """`model` (a copy unless `inplace`) with a head from the class prompts' text embeddings
    (`templates`, e.g. `data.templates` or `workbench.world.zero_shot_templates()`)."""
    backend = model if inplace else clone_module(model)
    return ImageClassifier(backend, backend.zero_shot_head(classnames, templates))


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy with no trainable parameters, in eval mode (a teacher)."""
    teacher = clone_module(module)
    teacher.requires_grad_(False)
    return teacher.eval()


def as_teacher(module: nn.Module) -> nn.Module:
    """`module` itself if it is already frozen (no parameter requires grad), else a frozen copy."""
    if any(p.requires_grad for p in module.parameters()):
        return frozen_copy(module)
    return module


def vision_modules(backend: ClipBackend) -> list[nn.Module]:
    """The image tower (and its projection) of a backend (`backend.tower_modules("vision")`)."""
    return backend.tower_modules("vision")


def text_parameters(backend: ClipBackend) -> list[nn.Parameter]:
    """Text-tower parameters, including open_clip's loose ones (`backend.tower_parameters("text")`)."""
    return backend.tower_parameters("text")


def set_trainable(classifier: ImageClassifier, parts: Iterable[str]) -> int:
    """Train only `parts` (subset of "vision", "text", "head"); returns the number of trainable values."""
    parts = set(parts)
    unknown = parts - {"vision", "text", "head"}
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; accepted: vision, text, head")
    classifier.requires_grad_(False)
    if "vision" in parts:
        for m in vision_modules(classifier.model):
            m.requires_grad_(True)
    if "text" in parts:
        for p in text_parameters(classifier.model):
            p.requires_grad_(True)
    if "head" in parts:
        classifier.head.requires_grad_(True)
    return sum(p.numel() for p in classifier.parameters() if p.requires_grad)

