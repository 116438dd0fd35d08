"""Uni-Code's codebook: EMA updates with the cross-modal MM-EMA term, cross-modal commitment, dead-code reset.

As the authors' code does it (haihuangcode/CMG, `Cross_VQEmbeddingEMA*` in main_model_2.py), read for the
rules, not copied: every modality is assigned to its nearest code first; then, modality by modality, the EMA
count is updated with that modality's own assignments and the EMA sum of each chosen code with
`own * sum(z_own) + sum_b w_b * sum(z_b)`, z_b the other modalities' features at the same (sample, step)
(weights 0.5 / 0.5 for two modalities, 0.5 / 0.25 / 0.25 for three); commitment pulls each modality's
feature to its own code (weight 2) and to the other modalities' codes (weight 1 split among them). Reset: a
code unused for more than `reset_after` batches (authors 300) is re-initialised to a code used within the
last `reset_recent` batches (authors 100; disjoint windows) plus uniform noise in [-1/1024, 1/1024], a
code counting as used when any modality used it (the authors' current code counts every modality, three
included). reset_rule="every" is the paper's wording instead (see config.py).

Nearest code: squared Euclidean distances in float64 (the authors compute them in float32 and cast the
result to float64 before argmin, which changes nothing), so a last-bit rounding difference between CPUs
cannot flip a near tie; ties go to the lowest index (torch.argmin returns the first minimum).

Differences from the authors' code, on purpose: the EMA count is stored raw and Laplace-smoothed when the
codebook is recomputed (as vector-quantize-pytorch does; the authors store the smoothed count, a difference
of order eps); a reset also rewrites the code's EMA sum, so the reset survives the next EMA step (in the
authors' code the next update recomputes the row from the old sum, undoing the reset after one batch);
resets happen in training only (the authors' counter and reset also run in evaluation forwards); the usage
counters start at 0 (the authors' at -1, one batch of difference); the initial codes are uniform in
[-1/K, 1/K] (the authors' bound is 1/400 whatever K: the same at their K = 400).
With `separate=True` each modality has its own codebook (the per-modality baseline, aligned by index:
row i of every codebook is pulled by the MM-EMA and commitment terms towards the same steps).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .config import RESET_RULES, recent_window


class QuantOut(NamedTuple):
    quantized: dict[str, Tensor]  # modality -> (N, T, D), straight-through (value: the code's row)
    indices: dict[str, Tensor]  # modality -> (N, T) long
    commitment: Tensor  # scalar


class EMAState(NamedTuple):
    count: Tensor  # (K,) raw EMA of assignment counts
    weight: Tensor  # (K, D) EMA of assigned feature sums
    embedding: Tensor  # (K, D) weight / Laplace-smoothed count


def nearest(flat: Tensor, embedding: Tensor) -> Tensor:
    """Index of the nearest code (squared Euclidean, in float64) for each row; ties go to the lowest index.
    flat (M, D), embedding (K, D) -> (M,)."""
    flat, embedding = flat.double(), embedding.double()
    dist = torch.addmm((embedding * embedding).sum(1), flat, embedding.t(), beta=1.0, alpha=-2.0)
    return dist.argmin(dim=1)


def ema_step(count: Tensor, weight: Tensor, own: Tensor, own_idx: Tensor, others: list[Tensor],
             own_share: float, other_share: float, decay: float, eps: float) -> EMAState:
    """One modality's EMA update of a codebook: counts from its own assignments only.

    count (K,), weight (K, D); own (M, D) with own_idx (M,) its codes; others: the other modalities'
    features (M, D) at the same rows. Sum update: decay * w + (1 - decay) * (own_share * onehot^T own
    + other_share * sum_b onehot^T z_b). own_share = 1, other_share = 0 is plain EMA.
    """
    k = count.shape[0]
    mix = own_share * own
    for z in others:  # linear in the features: one scatter-add of the mixed rows per modality
        mix = mix + other_share * z
    count = decay * count + (1 - decay) * torch.bincount(own_idx, minlength=k).to(count.dtype)
    total = torch.zeros_like(weight).index_add_(0, own_idx, mix.to(weight.dtype))
    weight = decay * weight + (1 - decay) * total
    n = count.sum()
    smoothed = (count + eps) / (n + k * eps) * n
    return EMAState(count, weight, weight / smoothed.unsqueeze(1))


class EMACodebook(nn.Module):
    """One codebook shared by all modalities (or one per modality with separate=True), EMA-updated in training."""

    def __init__(self, modalities: tuple[str, ...], codes: int, dim: int, decay: float = 0.99,
                 commitment: float = 0.25, eps: float = 1e-5, cross_weight: float = 0.5, cross_commit: bool = True,
                 reset: bool = True, reset_after: int = 300, reset_recent: int | None = None,
                 reset_noise: float = 1 / 1024, separate: bool = False, reset_rule: str = "any"):
        super().__init__()
        if codes <= 0 or dim <= 0:
            raise ValueError(f"codebook size and dimension must be positive, got codes={codes}, dim={dim}")
        self.modalities = tuple(modalities)
        self.codes, self.dim, self.decay, self.eps, self.commitment = codes, dim, decay, eps, commitment
        self.cross_weight = cross_weight if len(self.modalities) > 1 else 0.0
        self.cross_commit = cross_commit and len(self.modalities) > 1
        if reset_rule not in RESET_RULES:
            raise ValueError(f"unknown reset_rule {reset_rule!r}; accepted: {', '.join(RESET_RULES)}")
        self.reset, self.reset_after = reset, reset_after
        self.reset_recent = recent_window(reset_after, reset_recent)
        self.reset_noise, self.reset_rule = reset_noise, reset_rule
        self.separate = separate
        groups = len(self.modalities) if separate else 1
        embedding = torch.empty(groups, codes, dim).uniform_(-1 / codes, 1 / codes)  # the authors' init at K = 400
        self.register_buffer("embedding", embedding)  # (G, K, D)
        self.register_buffer("ema_count", torch.zeros(groups, codes))
        self.register_buffer("ema_weight", embedding.clone())
        # batches since each modality last used each code (of its own codebook when separate)
        self.register_buffer("unused", torch.zeros(len(self.modalities), codes, dtype=torch.long))

    def group(self, modality: str) -> int:
        return self.modalities.index(modality) if self.separate else 0

    def codebook(self, modality: str | None = None) -> Tensor:
        """(K, D) code vectors (of `modality`'s codebook when separate)."""
        return self.embedding[self.group(modality) if modality is not None else 0]

    def lookup(self, z: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Nearest codes without any update: (codebook rows (N, T, D), indices (N, T)) per modality."""
        quantized, indices = {}, {}
        for m, x in z.items():
            emb = self.codebook(m)
            idx = nearest(x.detach().reshape(-1, self.dim), emb)
            indices[m] = idx.view(x.shape[:-1])
            quantized[m] = F.embedding(indices[m], emb)
        return quantized, indices

    def forward(self, z: dict[str, Tensor]) -> QuantOut:
        """z: modality -> (N, T, D) semantic features, all modalities of the same steps."""
        unknown = [m for m in z if m not in self.modalities]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r} for this codebook; accepted: {self.modalities}")
        q, idx = self.lookup(z)
        if self.training:
            self._update({m: x.detach().reshape(-1, self.dim) for m, x in z.items()},
                         {m: i.reshape(-1) for m, i in idx.items()})
        commit = self._commitment(z, q)
        st = {m: x + (q[m] - x).detach() for m, x in z.items()}
        return QuantOut(st, idx, commit)

    def _commitment(self, z: dict[str, Tensor], q: dict[str, Tensor]) -> Tensor:
        total = z[next(iter(z))].new_zeros(())
        others_n = len(z) - 1
        for a, x in z.items():
            own = 2.0 if self.cross_commit else 1.0
            total = total + self.commitment * own * F.mse_loss(x, q[a].detach())
            if self.cross_commit:
                for b in z:
                    if b != a:
                        total = total + self.commitment / others_n * F.mse_loss(x, q[b].detach())
        return total

    @torch.no_grad()
    def _update(self, flat: dict[str, Tensor], idx: dict[str, Tensor]) -> None:
        others_n = len(flat) - 1
        other_share = self.cross_weight / others_n if others_n else 0.0
        for a in flat:  # modality by modality, as the authors' code
            g = self.group(a)
            others = [flat[b] for b in flat if b != a] if other_share else []
            state = ema_step(self.ema_count[g], self.ema_weight[g], flat[a], idx[a], others,
                             1.0 - (self.cross_weight if others else 0.0), other_share, self.decay, self.eps)
            self.ema_count[g], self.ema_weight[g], self.embedding[g] = state
        self.unused += 1
        for a, i in idx.items():
            self.unused[self.modalities.index(a), i] = 0
        if self.reset:
            self._reset_dead()

    def idle(self, group: int = 0) -> Tensor:
        """(K,) batches each code of `group` counts as unused under the reset rule: since any modality used it
        ("any": the minimum over modalities) or since the last modality to use it did ("every": the maximum)."""
        rows = [i for i, m in enumerate(self.modalities) if self.group(m) == group]
        counts = self.unused[rows]
        return counts.min(0).values if self.reset_rule == "any" else counts.max(0).values

    def _reset_dead(self) -> None:
        for g in range(self.embedding.shape[0]):
            idle = self.idle(g)
            dead = (idle > self.reset_after).nonzero().flatten()
            recent = (idle < self.reset_recent).nonzero().flatten()  # disjoint from dead: reset_recent < reset_after
            if len(dead) == 0 or len(recent) == 0:
                continue
            pick = recent[torch.randint(len(recent), (len(dead),)).to(recent.device)]
            noise = torch.empty(len(dead), self.dim).uniform_(-self.reset_noise, self.reset_noise)
            new = self.embedding[g, pick] + noise.to(self.embedding.device)
            count = self.ema_count[g]
            n = count.sum()
            smoothed = (count[dead] + self.eps) / (n + self.codes * self.eps) * n
            self.embedding[g, dead] = new
            self.ema_weight[g, dead] = new * smoothed.unsqueeze(1)
            rows = [i for i, m in enumerate(self.modalities) if self.group(m) == g]
            self.unused[torch.tensor(rows, device=dead.device)[:, None], dead[None, :]] = 0


def batch_perplexity(indices: Tensor, codes: int) -> float:
    """exp(entropy) of the code histogram of one batch of indices (any shape)."""
    p = torch.bincount(indices.reshape(-1), minlength=codes).float()
    p = p / p.sum().clamp_min(1)
    return float(torch.exp(-(p * torch.log(p + 1e-10)).sum()))
