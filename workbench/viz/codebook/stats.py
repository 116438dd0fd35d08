"""The numbers the codebook pictures print about one usage tensor (K, M, C + 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import _as_usage


@dataclass(frozen=True)
class CodebookStats:
    """What the figures print about one usage tensor, computed by `workbench.methods.codebook.usage`.

    perplexity (M,): exp(entropy of each modality's code histogram) (1 = one code, K = uniform);
    dead (M,): codes a modality never used; used: codes any modality used; shared_two / shared_all:
    of the used codes, the fraction used by at least two / by all modalities; purity (K,): class
    entropy (nats) of the steps on each code, all modalities pooled, NaN for unused codes.
    """
    perplexity: np.ndarray
    dead: np.ndarray
    used: int
    shared_two: float
    shared_all: float
    purity: np.ndarray


def codebook_stats(usage) -> CodebookStats:
    """Perplexity, dead codes, shared fractions and purity of a usage tensor (K, M, C + 1)."""
    from workbench.methods.codebook import usage as stats

    t = torch.as_tensor(_as_usage(usage))
    K, M, _ = t.shape
    shared = stats.shared_fraction(t)
    return CodebookStats(perplexity=stats.perplexity(t).numpy(),
                         dead=np.array([stats.dead_codes(t[:, m:m + 1]) for m in range(M)]),
                         used=K - stats.dead_codes(t), shared_two=shared.two, shared_all=shared.all,
                         purity=stats.purity(t).numpy())
