"""Fusion layers (text self-attention + cross-attention to vision) and the small causal text decoder,
both torch `nn.TransformerDecoderLayer` stacks (pre-norm, GELU), their self-attention and MLP started
from the text encoder's last block where the widths match (open_clip blocks)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import copy_block_into


def decoder_layers(n: int, width: int, heads: int, source: nn.Module | None) -> nn.ModuleList:
    layers = nn.ModuleList(
        nn.TransformerDecoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0, activation="gelu",
                                   batch_first=True, norm_first=True) for _ in range(n))
    if source is not None:
        for layer in layers:
            copy_block_into(layer, source)
    return layers


class FusionLayers(nn.Module):
    """forward(text (B, L, D), padding (B, L) bool, memory (B, M, D)) -> fused text tokens (B, L, D)."""

    def __init__(self, n: int, width: int, heads: int, source: nn.Module | None = None):
        super().__init__()
        self.layers = decoder_layers(n, width, heads, source)
        self.norm = nn.LayerNorm(width)

    def forward(self, text: torch.Tensor, padding: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = text
        for layer in self.layers:  # bidirectional over the text, padding masked out
            x = layer(x, memory, tgt_key_padding_mask=padding)
        return self.norm(x)
