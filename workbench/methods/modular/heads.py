"""Task heads: contrastive (retrieval), classifier, QA answer classification. (Captioning's head is the
decoder's tied language-model output, `TextDecoder.logits`.)"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.loss import ClipLoss


class ContrastiveHead(nn.Module):
    """forward(a (B, E), b (B, E) normalised) -> (logits (B, B) = scale a b^T, symmetric InfoNCE loss)."""

    def __init__(self, logit_scale: nn.Parameter):
        super().__init__()
        self.logit_scale = logit_scale  # the dual encoder's own parameter
        self.loss = ClipLoss()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self.logit_scale.exp()
        return scale * a @ b.T, self.loss(a, b, scale)


class ClassifierHead(nn.Module):
    """Normalised embedding (B, E) -> class logits (B, C); `init_from` starts it as a zero-shot head."""

    def __init__(self, embed_dim: int, classes: int):
        super().__init__()
        self.linear = nn.Linear(embed_dim, classes)

    def init_from(self, class_embeddings: torch.Tensor, scale: float = 1.0) -> None:
        """Weights from normalised class text embeddings (C, E), e.g. a zero-shot head's; bias zero."""
        if tuple(class_embeddings.shape) != tuple(self.linear.weight.shape):
            raise ValueError(f"class embeddings {tuple(class_embeddings.shape)}; accepted: "
                             f"{tuple(self.linear.weight.shape)} (classes, embedding dim)")
        with torch.no_grad():
            self.linear.weight.copy_(F.normalize(class_embeddings.float(), dim=-1) * scale)
            self.linear.bias.zero_()

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(embedding)


class QAHead(nn.Module):
    """A fused or decoded state (B, D) -> answer logits (B, A)."""

    def __init__(self, width: int, answers: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, answers)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(state))
