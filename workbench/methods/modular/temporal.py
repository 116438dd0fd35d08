"""mPLUG-2's local temporal module: LayerNorm -> 1x1 down to d/2 -> depthwise temporal conv (kernel 3)
-> GELU -> 1x1 up (zero-initialised), added residually by the vision block that holds it."""
from __future__ import annotations

import torch
import torch.nn as nn


class TemporalModule(nn.Module):
    """forward(x (B*T, N, D), frames=T) -> the residual update (B*T, N, D); zero at initialisation."""

    def __init__(self, width: int, kernel: int = 3):
        super().__init__()
        hidden = width // 2
        self.norm = nn.LayerNorm(width)
        self.down = nn.Linear(width, hidden)  # a 1x1x1 convolution over (T, H, W) is a linear map per token
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=kernel // 2, groups=hidden)  # depthwise, over time
        self.act = nn.GELU()
        self.up = nn.Linear(hidden, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, n, _ = x.shape
        b = bt // frames
        h = self.down(self.norm(x))                                   # (B*T, N, C)
        c = h.shape[-1]
        h = h.view(b, frames, n, c).permute(0, 2, 3, 1).reshape(b * n, c, frames)  # (B*N, C, T)
        h = self.act(self.conv(h))
        h = h.view(b, n, c, frames).permute(0, 3, 1, 2).reshape(bt, n, c)         # (B*T, N, C)
        return self.up(h)
