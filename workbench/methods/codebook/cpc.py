"""Cross-CPC: per-modality LSTM context predicts every modality's semantic feature k steps ahead (InfoNCE).

For each modality a an LSTM summarises a's semantic features up to step t; a linear map per target
modality b predicts b's feature at t + k; the positive is the same sample's feature, the negatives the other
samples of the batch at that step. Cross terms (a != b) weigh `cross` (1), within-modality terms `within`
(0.1), as Uni-Code's code. All steps t = 0 .. T - k - 1 are used (the authors draw one random t per batch).
Runs on pre-quantisation features.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def info_nce(pred: Tensor, target: Tensor) -> Tensor:
    """InfoNCE with dot-product scores: row i of pred should pick row i of target. (N, D), (N, D) -> scalar."""
    logits = pred @ target.t()
    return F.cross_entropy(logits, torch.arange(len(pred), device=pred.device))


def stepwise_info_nce(pred: Tensor, target: Tensor) -> Tensor:
    """info_nce at every step at once, averaged: (N, S, D), (N, S, D) -> scalar (negatives: same step)."""
    logits = torch.bmm(pred.transpose(0, 1), target.transpose(0, 1).transpose(1, 2))  # (S, N, N)
    s, n, _ = logits.shape
    labels = torch.arange(n, device=pred.device).repeat(s)
    return F.cross_entropy(logits.reshape(s * n, n), labels)


class CrossCPC(nn.Module):
    def __init__(self, modalities: tuple[str, ...], dim: int, k: int = 1, cross: float = 1.0, within: float = 0.1):
        super().__init__()
        if k <= 0 or dim <= 0:
            raise ValueError(f"Cross-CPC needs k >= 1 and dim >= 1, got k={k}, dim={dim}")
        self.modalities, self.k, self.cross, self.within = tuple(modalities), k, cross, within
        self.context = nn.ModuleDict({m: nn.LSTM(dim, dim, batch_first=True) for m in self.modalities})
        self.predict = nn.ModuleDict({f"{a}_{b}": nn.Linear(dim, dim)
                                      for a in self.modalities for b in self.modalities})

    def forward(self, z: dict[str, Tensor]) -> Tensor:
        """z: modality -> (N, T, D) semantic features; returns the weighted sum of InfoNCE terms."""
        t_len = next(iter(z.values())).shape[1]
        if t_len <= self.k:
            raise ValueError(f"Cross-CPC with k={self.k} needs sequences longer than k steps, got T={t_len}")
        total = next(iter(z.values())).new_zeros(())
        for a in z:
            ctx, _ = self.context[a](z[a])  # (N, T, D)
            ctx = ctx[:, : t_len - self.k]
            for b in z:
                weight = self.within if a == b else self.cross
                if weight == 0:
                    continue
                pred = self.predict[f"{a}_{b}"](ctx)  # (N, T - k, D)
                target = z[b][:, self.k:]
                total = total + weight * stepwise_info_nce(pred, target)
        return total
