"""Objective pieces more than one method uses: the batch accuracy they log, and the linear probe's loss."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.engine import Loss


def batch_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of rows of `logits` (B, C) whose argmax is the label (B,): a detached scalar tensor."""
    return (logits.detach().argmax(-1) == labels).float().mean()


class LinearProbeObjective(nn.Module):
    """Cross-entropy of a linear probe: forward(labels, images=... | features=...) -> Loss.

    `probe` maps its input to logits (B, C): a `LinearProbe` / `ImageClassifier` on pixels
    (batches carry "images"), or a head on precomputed frozen features (batches carry "features",
    e.g. `ZeroShotHead`). Labels index the probe's classes.
    """

    def __init__(self, probe: nn.Module):
        super().__init__()
        self.probe = probe

    def forward(self, images: torch.Tensor | None = None, labels: torch.Tensor | None = None, *,
                features: torch.Tensor | None = None, index=None, step: int = 0) -> Loss:
        if labels is None or (images is None) == (features is None):
            raise ValueError("a linear probe's batch has labels and one of images or features")
        logits = self.probe(images if features is None else features)  # (B, C)
        return Loss(F.cross_entropy(logits, labels), {"batch_acc": batch_accuracy(logits, labels)})
