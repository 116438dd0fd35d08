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
        h = self.down(self.norm(x))                                   # (B*T, N, C)
        h = self.act(self.temporal_conv(h.view(bt // frames, frames, n, h.shape[-1])))
        return self.up(h.view(bt, n, -1))

    def temporal_conv(self, h: torch.Tensor) -> torch.Tensor:
        """`self.conv` (depthwise over time, zero padding) on h (B, T, N, C) in place of its (B*N, C, T)
        layout: the same sum of shifted frames, without the two permuted copies that made the module
        cost as much as a third of a block on CPU (`conv_reference` is the library call it equals)."""
        w, t = self.conv.weight[:, 0], h.shape[1]  # (C, K)
        pad = self.conv.padding[0]
        out = torch.addcmul(self.conv.bias, h, w[:, pad])
        for j in range(w.shape[1]):
            s = j - pad  # out[t] += w[j] * h[t + s]
            if s < 0 and t + s > 0:
                out[:, -s:].addcmul_(h[:, :t + s], w[:, j])
            elif s > 0 and t - s > 0:
                out[:, :t - s].addcmul_(h[:, s:], w[:, j])
        return out

    def conv_reference(self, h: torch.Tensor) -> torch.Tensor:
        """The same as `temporal_conv`, through nn.Conv1d on the (B*N, C, T) layout."""
        b, t, n, c = h.shape
        out = self.conv(h.permute(0, 2, 3, 1).reshape(b * n, c, t))
        return out.view(b, n, c, t).permute(0, 3, 1, 2)
