"""Which words does a text tower know? Token-embedding row norms.

A word the text tower never saw in pretraining keeps its token-embedding row at initialisation
(small norm). Study 02: attention and MLP adapters (mode approximation, LoRA, ...) leave embedding
rows untouched, full fine-tuning rewrites them, a linear probe bypasses text altogether: the
evidence for its secondary (novel-word) task's reading. Study 04: tiny-world-clip's pretraining
captions never named a direction of motion, so captions that differ only in "left" / "right"
embed alike however well the video side sees motion.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from workbench.models import ClipBackend
from workbench.world import World


def text_embedding(model: ClipBackend) -> nn.Embedding:
    """The text tower's token embedding (the first nn.Embedding of the text tower)."""
    for name, module in model.model.named_modules():
        if isinstance(module, nn.Embedding) and model.tower_of(name) == "text":
            return module
    raise ValueError(f"{model.name} has no nn.Embedding in its text tower: no token-embedding rows to show")


@torch.no_grad()
def word_token_norms(model: ClipBackend, words: Sequence[str] | None = None) -> list[dict]:
    """One row per word (default: every world class): its kind ("pretraining class", "novel class"
    or "other word"), how many tokens it takes and the mean L2 norm of their embedding rows."""
    if isinstance(words, str):
        raise TypeError(f"words={words!r} is one string; accepted: a sequence of words, e.g. ({words!r},)")
    words = list(World.classes if words is None else words)
    bad = [w for w in words if not isinstance(w, str)]
    if bad:
        raise TypeError(f"words hold {bad[0]!r} ({type(bad[0]).__name__}); accepted: strings")
    table = text_embedding(model).weight  # (vocab, width)
    special = set(model.tokenize([""])[0].tolist())  # start, end and padding ids
    rows = []
    for w in words:
        ids = [i for i in dict.fromkeys(model.tokenize([w])[0].tolist()) if i not in special]
        norms = table[ids].norm(dim=-1) if ids else torch.zeros(0)
        kind = ("pretraining class" if w in World.pretrain_classes else "novel class" if w in World.classes
                else "other word")
        rows.append({"word": w, "kind": kind, "tokens": len(ids),
                     "norm": round(float(norms.mean()), 3) if ids else None})
    return rows
