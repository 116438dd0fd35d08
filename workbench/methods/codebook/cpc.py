"""Cross-CPC: per-modality LSTM context, ONE predictor per source modality, scored against every modality's future.

As the authors' code does it (haihuangcode/CMG, CPC.py `Cross_CPC` / `Cross_CPC_AVT`), read for the rules,
not copied: for each modality a an LSTM (2 layers, context size = feature size) summarises a's semantic
features up to step t, and one linear predictor per SOURCE modality (`video_predictors`, ...) maps that
context to a single prediction p_a(t + k). That one prediction is scored against every modality b's
feature at t + k with InfoNCE over the batch: the positive is the same sequence, the negatives the other
sequences' predictions at that step (the authors' score matrix has the true futures as rows and a
log-softmax over the predictions). Cross terms (a != b) weigh `cross` (1), within-modality terms `within`
(0.1). Runs on pre-quantisation features.

Why one predictor per source: with a predictor per (source, target) pair the loss cannot see an invertible
linear map M of one modality's features z_b -> M z_b: the context LSTM absorbs M in its input weights
(W_ih -> W_ih M^-1) and each predictor towards b absorbs it in its output (P_ab -> M^-T P_ab), so every
score is unchanged and nothing pulls the modalities into one space. With one predictor per source, p_a is
scored against a's own future and against b's, so a map on b's side changes the within term or the cross
term; the within-modality weight (the authors' "slightly computing self nce ... provides a direction to
align different modalities") is what pins it: with within = 0 the cross terms alone are again blind to M.

Departure: all steps t = 0 .. T - k - 1 are scored and averaged (the authors draw one random t >= 1 per
batch), and one prediction horizon k (the authors' n_prediction_steps = 1 is the same).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


def info_nce(rows: Tensor, cols: Tensor) -> Tensor:
    """InfoNCE with dot-product scores: row i of `rows` should pick row i of `cols` among all of them.
    (N, D), (N, D) -> scalar."""
    logits = rows @ cols.t()
    return F.cross_entropy(logits, torch.arange(len(rows), device=rows.device))


def stepwise_info_nce(rows: Tensor, cols: Tensor) -> Tensor:
    """info_nce at every step at once, averaged: (N, S, D), (N, S, D) -> scalar (candidates: the same step)."""
    logits = torch.bmm(rows.transpose(0, 1), cols.transpose(0, 1).transpose(1, 2))  # (S, N, N)
    s, n, _ = logits.shape
    labels = torch.arange(n, device=rows.device).repeat(s)
    return F.cross_entropy(logits.reshape(s * n, n), labels)


class CrossCPC(nn.Module):
    def __init__(self, modalities: tuple[str, ...], dim: int, k: int = 1, cross: float = 1.0, within: float = 0.1,
                 layers: int = 2):
        super().__init__()
        if k <= 0 or dim <= 0 or layers <= 0:
            raise ValueError(f"Cross-CPC needs k >= 1, dim >= 1 and layers >= 1, got k={k}, dim={dim}, layers={layers}")
        self.modalities, self.k, self.cross, self.within = tuple(modalities), k, cross, within
        self.context = nn.ModuleDict({m: nn.LSTM(dim, dim, layers, batch_first=True) for m in self.modalities})
        self.predict = nn.ModuleDict({m: nn.Linear(dim, dim) for m in self.modalities})  # one per source

    def forward(self, z: dict[str, Tensor]) -> Tensor:
        """z: modality -> (N, T, D) semantic features; returns the weighted sum of InfoNCE terms."""
        t_len = next(iter(z.values())).shape[1]
        if t_len <= self.k:
            raise ValueError(f"Cross-CPC with k={self.k} needs sequences longer than k steps, got T={t_len}")
        total = next(iter(z.values())).new_zeros(())
        for a in z:
            ctx, _ = self.context[a](z[a])  # (N, T, D)
            pred = self.predict[a](ctx[:, : t_len - self.k])  # (N, T - k, D): a's one prediction of step t + k
            for b in z:
                weight = self.within if a == b else self.cross
                if weight == 0:
                    continue
                total = total + weight * stepwise_info_nce(z[b][:, self.k:], pred)
        return total
