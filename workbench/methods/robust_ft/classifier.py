"""Classifiers for robust fine-tuning: image tower + a head initialised from zero-shot text embeddings.

The zero-shot classifier is both every method's starting point and the frozen teacher of the
distillation methods. Helpers here choose which parameters a method trains (image tower, text
tower, head) by setting `requires_grad`, which is what `workbench.engine.train` reads.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn

from workbench.models import ClipBackend, ImageClassifier


_SHARED_ATTRS = ("_tokenizer", "_bpe", "_hf_tokenizer")  # read-only helpers a copy may share


def clone_module(module: nn.Module) -> nn.Module:
    """copy.deepcopy, except that the backends' tokenizers are shared, not copied.

    A CLIP BPE tokenizer holds ~100k-entry Python dicts: copying them costs more than copying
    the weights of a small model, and nothing ever writes to them.
    """
    memo = {}
    for m in module.modules():
        for attr in _SHARED_ATTRS:
            obj = m.__dict__.get(attr)
            if obj is not None:
                memo[id(obj)] = obj
    return copy.deepcopy(module, memo)


def zero_shot_classifier(model: ClipBackend, classnames: Sequence[str],
                         templates: Sequence[Callable | str] | None = None, inplace: bool = False) -> ImageClassifier:
    """`model` (a copy unless `inplace`) with a head from the class prompts' text embeddings."""
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
    """The image tower (and its projection) of a backend."""
    if backend.kind == "open_clip":
        return [backend.model.visual]
    if backend.kind == "hf_clip":
        return [backend.model.vision_model, backend.model.visual_projection]
    raise NotImplementedError(f"unknown backend kind {backend.kind!r}; known: open_clip, hf_clip")


def text_parameters(backend: ClipBackend) -> list[nn.Parameter]:
    """Text-tower parameters, including open_clip's loose ones (positional embedding, projection)."""
    visual = {id(p) for m in vision_modules(backend) for p in m.parameters()}
    scale = id(backend.logit_scale)
    return [p for p in backend.parameters() if id(p) not in visual and id(p) != scale]


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


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable parameters' values (CPU copies), by name."""
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}
