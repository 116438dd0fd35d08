"""CLIP's symmetric contrastive objective (open_clip's ClipLoss), as an engine objective."""
from __future__ import annotations

import torch
import torch.nn as nn
from open_clip.loss import ClipLoss

from workbench.engine import Loss
from workbench.models.base import ClipBackend


class ContrastiveObjective(nn.Module):
    """forward(images, tokens) -> InfoNCE over the batch, both directions (image->text, text->image)."""

    def __init__(self, model: ClipBackend):
        super().__init__()
        self.model = model
        self.loss = ClipLoss()

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> Loss:
        img, txt, scale = self.model(images, tokens)
        loss = self.loss(img, txt, scale)
        with torch.no_grad():
            hits = (img @ txt.T).argmax(1) == torch.arange(len(img), device=img.device)
        return Loss(loss, {"batch_i2t_acc": hits.float().mean(), "logit_scale": scale.detach()})
