"""MICU-style masked cross-modal InfoNCE (the authors' ICCV 2025 follow-up direction; replaces CLUB + Cross-CPC).

Each modality's semantic features are masked (a random `ratio` of feature dimensions zeroed per step, the
authors mask adaptively); InfoNCE then matches masked features of modality a to the unmasked features of
modality b, over every ordered pair (a, b) including a = b, per step (positives: the same sample and step,
negatives: every other step of the batch) and for the time-mean (negatives: the other samples).
Cosine similarity with a temperature. The jigsaw term of MICU (CUJP) is not included.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t() / temperature
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))


def masked_infonce(z: dict[str, Tensor], ratio: float = 0.3, temperature: float = 0.1,
                   generator: torch.Generator | None = None) -> Tensor:
    """z: modality -> (N, T, D) semantic features; returns the mean InfoNCE over pairs, per step + time-mean."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio!r}")
    masked = {}
    for m, x in z.items():
        keep = torch.rand(x.shape, generator=generator).to(x.device) >= ratio
        masked[m] = x * keep / (1 - ratio)
    terms = []
    for a in z:
        for b in z:
            d = z[b].shape[-1]
            terms.append(_nce(masked[a].reshape(-1, d), z[b].reshape(-1, d), temperature))
            terms.append(_nce(masked[a].mean(1), z[b].mean(1), temperature))
    return torch.stack(terms).mean()
