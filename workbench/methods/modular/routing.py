"""Token-level routing (mPLUG-Owl2's MultiwayNetwork): per-modality copies of a module, each token
sent to its modality's copy."""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn

MODALITIES: tuple[str, ...] = ("text", "vision")


class Multiway(nn.Module):
    """copies[m] for each modality m; forward(x (..., D), ids (...) long index into `modalities`) -> (..., D').

    `Multiway.of(module)` keeps `module` itself as the first modality's copy (so text through a
    multiway layer computes what it did before) and deep-copies it for the others.
    """

    def __init__(self, copies: dict[str, nn.Module]):
        super().__init__()
        self.modalities = tuple(copies)
        self.copies = nn.ModuleList(copies.values())

    @classmethod
    def of(cls, module: nn.Module, modalities: Sequence[str] = MODALITIES) -> Multiway:
        return cls({m: module if i == 0 else copy.deepcopy(module) for i, m in enumerate(modalities)})

    def index(self, modality: str) -> int:
        if modality not in self.modalities:
            raise ValueError(f"modality={modality!r}; accepted: {', '.join(map(repr, self.modalities))}")
        return self.modalities.index(modality)

    def select(self, modality: str) -> nn.Module:
        """Path-level selection: the one copy a whole sequence of `modality` goes through."""
        return self.copies[self.index(modality)]

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape != x.shape[:-1]:
            raise ValueError(f"modality ids have shape {tuple(ids.shape)}; accepted: x's shape without its "
                             f"last dimension, {tuple(x.shape[:-1])}")
        flat, flat_ids = x.reshape(-1, x.shape[-1]), ids.reshape(-1)
        places = [(flat_ids == i).nonzero().squeeze(1) for i in range(len(self.copies))]  # one pass per copy
        sizes = [len(w) for w in places]
        if sum(sizes) != flat_ids.numel():  # ids outside 0 .. copies - 1 went to no copy
            bad = sorted({int(v) for v in flat_ids[(flat_ids < 0) | (flat_ids >= len(self.copies))].tolist()})
            raise ValueError(f"modality ids {bad}; accepted: 0 ... {len(self.copies) - 1} "
                             f"({', '.join(self.modalities)})")
        if flat_ids.numel() in sizes:  # every token has the same modality: its copy takes the sequence as it is
            return self.copies[sizes.index(flat_ids.numel())](x)
        outs = [(where, module(flat.index_select(0, where)))
                for module, where in zip(self.copies, places) if len(where)]
        out = outs[0][1].new_empty(flat.shape[0], outs[0][1].shape[-1])
        for where, o in outs:
            out.index_copy_(0, where, o)
        return out.view(*x.shape[:-1], out.shape[-1])


class RoutedParts(nn.Module):
    """A block's LayerNorms and MLP as Multiway copies, called with one modality id per token."""

    def __init__(self, ln_1: nn.Module, ln_2: nn.Module, mlp: nn.Module):
        super().__init__()
        self.ln_1, self.ln_2, self.mlp = Multiway.of(ln_1), Multiway.of(ln_2), Multiway.of(mlp)
