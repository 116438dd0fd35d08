"""Per-modality encoders and decoders of Uni-Code.

Per-step inputs are vectors (T, D) or spatial grids (T, h, w, c) such as the paper's 7x7x512 video
features; grids are average-pooled over space first (the authors attend over space; the workbench's
grids are small). The semantic encoder maps (N, T, D_in) to (N, T, dim) with a small temporal transformer
(or a per-step MLP); the modality-specific encoder is a per-step MLP; the decoder reconstructs the (pooled)
input from [quantised semantic ; specific] (MSE), as the authors' audio and text decoders do.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


def step_dim(shape: tuple[int, ...]) -> int:
    """Feature size of one step after spatial pooling: (D,) -> D, (h, w, c) -> c."""
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (1, 3) or any(s <= 0 for s in shape):
        raise ValueError(f"a per-step feature shape must be (D,) or (h, w, c) with positive sizes, got {shape}")
    return shape[-1]


def pool_steps(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """(N, T, *shape) -> (N, T, D): grids averaged over space, vectors unchanged."""
    if tuple(x.shape[2:]) != tuple(shape):
        raise ValueError(f"features of shape {tuple(x.shape)} do not match the per-step shape {tuple(shape)} "
                         f"the model was built for (expected (N, T, {', '.join(map(str, shape))}))")
    return x.mean(dim=(2, 3)) if len(shape) == 3 else x


class SemanticEncoder(nn.Module):
    """(N, T, *shape) -> (N, T, dim): Linear to dim, then a temporal transformer (or an MLP per step)."""

    def __init__(self, shape: tuple[int, ...], dim: int, kind: str = "transformer", layers: int = 2, heads: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.shape = tuple(shape)
        self.proj = nn.Linear(step_dim(shape), dim)
        if kind == "transformer":
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout, batch_first=True)
            self.body: nn.Module = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        elif kind == "mlp":
            self.body = nn.Sequential(*[m for _ in range(layers) for m in (nn.ReLU(), nn.Linear(dim, dim))])
        else:
            raise ValueError(f"unknown encoder {kind!r}; accepted: transformer, mlp")

    def forward(self, x: Tensor) -> Tensor:
        return self.body(self.proj(pool_steps(x, self.shape)))


class SpecificEncoder(nn.Module):
    """(N, T, *shape) -> (N, T, out_dim): the modality-specific part, per step."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, hidden: int = 256):
        super().__init__()
        self.shape = tuple(shape)
        self.net = nn.Sequential(nn.Linear(step_dim(shape), hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(pool_steps(x, self.shape))


class Decoder(nn.Module):
    """[quantised (N, T, dim) ; specific (N, T, s)] -> (N, T, D_in), the pooled input."""

    def __init__(self, dim: int, specific_dim: int, out_dim: int):
        super().__init__()
        self.vq = nn.Linear(dim, specific_dim)
        self.out = nn.Linear(2 * specific_dim, out_dim)

    def forward(self, quantized: Tensor, specific: Tensor) -> Tensor:
        return self.out(torch.cat([self.vq(quantized), specific], dim=-1))
