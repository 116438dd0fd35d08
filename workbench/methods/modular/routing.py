"""Token-level routing (mPLUG-Owl2's MultiwayNetwork): per-modality copies of a module, each token
sent to its modality's copy."""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn

MODALITIES: tuple[str, ...] = ("text", "vision")
MAX_SPANS = 8  # more runs per row than this: gather each copy's tokens instead of slicing runs


class Multiway(nn.Module):
    """copies[m] for each modality m; forward(x (..., L, D), ids (..., L) long index into `modalities`) -> (..., L, D').

    When every row shares one layout of a few runs (a [text | vision] sequence), each run is a slice of x
    and no token is gathered; otherwise each copy's tokens are gathered, run as one batch and scattered back.

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
        spans = self.spans(ids)
        if spans is not None:
            return self._by_spans(x, spans)
        return self._by_gather(x, ids)

    def spans(self, ids: torch.Tensor) -> list[tuple[int, int, int]] | None:
        """(copy, start, stop) runs along the sequence axis when every row of `ids` has the same modality
        layout (a [text | vision] sequence, say) in at most MAX_SPANS runs; None otherwise. Ids outside the
        copies raise."""
        if ids.ndim == 0 or ids.shape[-1] == 0:
            return None
        rows = ids.reshape(-1, ids.shape[-1])
        first = rows[0]
        if not bool((rows == first).all()):
            return None
        starts = [0, *((first[1:] != first[:-1]).nonzero().squeeze(1) + 1).tolist()]
        if len(starts) > MAX_SPANS:
            return None
        copies = first[starts].tolist()
        self._check_ids(copies)
        return [(c, a, b) for c, a, b in zip(copies, starts, [*starts[1:], len(first)])]

    def _by_spans(self, x: torch.Tensor, spans: list[tuple[int, int, int]]) -> torch.Tensor:
        """Each run's slice x[..., a:b, :] (a view) through its copy, written into one output."""
        if len(spans) == 1:  # every token has the same modality: its copy takes the sequence as it is
            return self.copies[spans[0][0]](x)
        out = None
        for c, a, b in spans:
            o = self.copies[c](x[..., a:b, :])
            if out is None:
                out = o.new_empty(*x.shape[:-1], o.shape[-1])
            out[..., a:b, :] = o
        return out

    def _by_gather(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Any layout: each copy's tokens gathered into one batch, run, and scattered back."""
        flat, flat_ids = x.reshape(-1, x.shape[-1]), ids.reshape(-1)
        places = [(flat_ids == i).nonzero().squeeze(1) for i in range(len(self.copies))]  # one pass per copy
        sizes = [len(w) for w in places]
        if sum(sizes) != flat_ids.numel():  # ids outside 0 .. copies - 1 went to no copy
            self._check_ids(flat_ids[(flat_ids < 0) | (flat_ids >= len(self.copies))].tolist())
        if flat_ids.numel() in sizes:  # every token has the same modality: its copy takes the sequence as it is
            return self.copies[sizes.index(flat_ids.numel())](x)
        outs = [(where, module(flat.index_select(0, where)))
                for module, where in zip(self.copies, places) if len(where)]
        out = outs[0][1].new_empty(flat.shape[0], outs[0][1].shape[-1])
        for where, o in outs:
            out.index_copy_(0, where, o)
        return out.view(*x.shape[:-1], out.shape[-1])

    def _check_ids(self, values: Sequence[int]) -> None:
        bad = sorted({int(v) for v in values if not 0 <= int(v) < len(self.copies)})
        if bad:
            raise ValueError(f"modality ids {bad}; accepted: 0 ... {len(self.copies) - 1} "
                             f"({', '.join(self.modalities)})")


class RoutedParts(nn.Module):
    """A block's LayerNorms and MLP as Multiway copies, called with one modality id per token."""

    def __init__(self, ln_1: nn.Module, ln_2: nn.Module, mlp: nn.Module):
        super().__init__()
        self.ln_1, self.ln_2, self.mlp = Multiway.of(ln_1), Multiway.of(ln_2), Multiway.of(mlp)
