"""Object classes as implicit shapes: each is a boolean test on local coordinates (u, v).

(u, v) are the pixel grid moved to the object's centre, rotated by its pose and divided
by its radius, so every test below works on the unit disc whatever the size and pose.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

Tensor = torch.Tensor


def _polygon(n: int, apothem: float) -> Callable[[Tensor, Tensor], Tensor]:
    """A regular n-gon: inside every edge's half-plane."""
    angles = [2 * math.pi * k / n + math.pi / 2 for k in range(n)]

    def inside(u: Tensor, v: Tensor) -> Tensor:
        out = torch.ones_like(u, dtype=torch.bool)
        for a in angles:
            out &= (u * math.cos(a) + v * math.sin(a)) < apothem
        return out

    return inside


def _star(u: Tensor, v: Tensor) -> Tensor:
    r = torch.sqrt(u * u + v * v)
    theta = torch.atan2(v, u)
    sector = 2 * math.pi / 5
    t = torch.remainder(theta, sector) / sector  # position inside one point, in [0, 1)
    tri = 1 - 2 * torch.abs(t - 0.5)  # 1 at the point's tip direction, 0 at the notch
    return r < 0.42 + 0.58 * tri


def _circle(u: Tensor, v: Tensor) -> Tensor:
    return u * u + v * v < 0.8


def _ring(u: Tensor, v: Tensor) -> Tensor:
    r2 = u * u + v * v
    return (r2 < 0.95) & (r2 > 0.33)


def _square(u: Tensor, v: Tensor) -> Tensor:
    return torch.maximum(u.abs(), v.abs()) < 0.72


def _cross(u: Tensor, v: Tensor) -> Tensor:
    a, b = u.abs(), v.abs()
    return ((a < 0.28) & (b < 0.95)) | ((b < 0.28) & (a < 0.95))


def _heart(u: Tensor, v: Tensor) -> Tensor:
    x, y = u * 1.25, -v * 1.25 + 0.15
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 < 0


def _crescent(u: Tensor, v: Tensor) -> Tensor:
    return (u * u + v * v < 0.9) & ((u - 0.42) ** 2 + v * v > 0.55)


def _arrow(u: Tensor, v: Tensor) -> Tensor:
    shaft = (u > -0.95) & (u < 0.15) & (v.abs() < 0.2)
    head = (u >= 0.0) & (u < 0.95) & (v.abs() < (0.95 - u) * 0.75)
    return shaft | head


def _diamond(u: Tensor, v: Tensor) -> Tensor:
    return u.abs() / 0.95 + v.abs() / 0.5 < 1


def _semicircle(u: Tensor, v: Tensor) -> Tensor:
    return (u * u + v * v < 0.9) & (v > -0.05)


def _chevron(u: Tensor, v: Tensor) -> Tensor:
    d = v + 0.8 * u.abs()
    return (d > -0.45) & (d < 0.15) & (u.abs() < 0.9)


SHAPES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _polygon(3, 0.5),
    "star": _star,
    "cross": _cross,
    "ring": _ring,
    "heart": _heart,
    "crescent": _crescent,
    "hexagon": _polygon(6, 0.82),
    "arrow": _arrow,
    # Held out of every split but the `novel_*` ones: the pretrained model never sees them.
    "pentagon": _polygon(5, 0.74),
    "diamond": _diamond,
    "semicircle": _semicircle,
    "chevron": _chevron,
}

PRETRAIN_CLASSES: tuple[str, ...] = tuple(list(SHAPES)[:10])
NOVEL_CLASSES: tuple[str, ...] = tuple(list(SHAPES)[10:])
ALL_CLASSES: tuple[str, ...] = tuple(SHAPES)


def shape_masks(cls: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """Boolean masks (B, H, W) for class indices `cls` (B,) over local coordinates (B, H, W)."""
    out = torch.zeros_like(u, dtype=torch.bool)
    for k, fn in enumerate(SHAPES.values()):
        sel = (cls == k).nonzero(as_tuple=True)[0]
        if len(sel):
            out[sel] = fn(u[sel], v[sel])
    return out
