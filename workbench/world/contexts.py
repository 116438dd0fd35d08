"""Backgrounds ("contexts"): a bank of textures, procedural and cut from real photos.

Each context is one texture, built once per bank size; a scene shows a random crop of it.
The real ones are scikit-image's bundled photographs (no download needed).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

# name -> caption phrase. Order matters: the first ten are the contexts of the `finetune`
# split (each tied to one class), the last four are never seen in `finetune`.
CONTEXTS: dict[str, str] = {
    "grass": "on grass",
    "gravel": "on gravel",
    "brick": "by a brick wall",
    "moon": "on the moon",
    "sky": "in the sky",
    "sand": "on sand",
    "water": "on water",
    "snow": "in snow",
    "tiles": "on tiles",
    "stripes": "on striped fabric",
    "space": "in space",
    "page": "on a printed page",
    "dots": "on a dotted wall",
    "sunset": "at sunset",
}
CONTEXT_NAMES: tuple[str, ...] = tuple(CONTEXTS)
SEEN_CONTEXTS: tuple[str, ...] = CONTEXT_NAMES[:10]
UNSEEN_CONTEXTS: tuple[str, ...] = CONTEXT_NAMES[10:]
REAL_CONTEXTS = ("grass", "gravel", "brick", "moon", "space", "page")


def _grey_photo(name: str) -> torch.Tensor:
    import skimage.data  # imported lazily: only the bank builder needs it

    img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
    if img.max() > 1.5:
        img = img / 255.0
    t = torch.from_numpy(img)
    return t if t.ndim == 2 else t[..., :3].permute(2, 0, 1)


def _resize(t: torch.Tensor, size: int) -> torch.Tensor:
    t = t[None, None] if t.ndim == 2 else t[None]
    side = min(t.shape[-2:])
    t = t[..., :side, :side]
    return F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def _tint(grey: torch.Tensor, rgb: tuple[float, float, float], lift: float = 0.0) -> torch.Tensor:
    g = grey[0] if grey.ndim == 3 else grey
    g = (g - g.min()) / (g.max() - g.min() + 1e-6)
    return torch.stack([lift + (1 - lift) * g * c for c in rgb])


def _lowfreq(gen: torch.Generator, size: int, cells: int) -> torch.Tensor:
    noise = torch.rand(1, 1, cells, cells, generator=gen)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0, 0]


def _procedural(name: str, size: int, gen: torch.Generator) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    fine = torch.rand(size, size, generator=gen)
    if name == "sky":
        clouds = _lowfreq(gen, size, 6).clamp(0.55, 1.0) - 0.55
        base = torch.stack([0.35 + 0.3 * y, 0.6 + 0.25 * y, torch.full_like(y, 0.95)])
        return base + 1.6 * clouds
    if name == "sand":
        ripple = 0.06 * torch.sin(2 * np.pi * (7 * y + 2 * _lowfreq(gen, size, 4)))
        g = 0.8 + ripple + 0.12 * (fine - 0.5)
        return torch.stack([g * 0.95, g * 0.8, g * 0.55])
    if name == "water":
        wave = 0.5 + 0.5 * torch.sin(2 * np.pi * (9 * y + 0.6 * torch.sin(2 * np.pi * 2 * x)))
        return torch.stack([0.05 + 0.1 * wave, 0.3 + 0.2 * wave, 0.55 + 0.3 * wave])
    if name == "snow":
        speck = (fine > 0.93).float()
        g = 0.88 + 0.08 * _lowfreq(gen, size, 5) - 0.25 * speck
        return torch.stack([g, g, g + 0.04])
    if name == "tiles":
        cell = max(size // 8, 2)
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        check = ((yy // cell + xx // cell) % 2).float()
        grout = ((yy % cell == 0) | (xx % cell == 0)).float()
        g = 0.25 + 0.6 * check
        return torch.stack([g * 0.6, g * 0.9, g * 0.9]) * (1 - 0.5 * grout)
    if name == "stripes":
        s = (torch.sin(2 * np.pi * 10 * (x + y)) > 0).float()
        return torch.stack([0.45 + 0.45 * s, 0.25 + 0.2 * s, 0.55 - 0.3 * s]) + 0.05 * (fine - 0.5)
    if name == "dots":
        cell = max(size // 10, 3)
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        d2 = (yy % cell - cell / 2) ** 2 + (xx % cell - cell / 2) ** 2
        dot = (d2 < (cell / 3.5) ** 2).float()
        return torch.stack([0.95 - 0.5 * dot, 0.75 - 0.5 * dot, 0.8 - 0.2 * dot])
    if name == "sunset":
        haze = 0.1 * _lowfreq(gen, size, 4)
        return torch.stack([0.95 - 0.4 * y, 0.55 - 0.35 * y, 0.25 + 0.3 * y]) + haze
    raise KeyError(name)


def _real(name: str, size: int) -> torch.Tensor:
    if name == "grass":
        return _tint(_resize(_grey_photo("grass"), size), (0.35, 0.75, 0.2), lift=0.05)
    if name == "gravel":
        return _tint(_resize(_grey_photo("gravel"), size), (0.75, 0.72, 0.66), lift=0.1)
    if name == "brick":
        return _tint(_resize(_grey_photo("brick"), size), (0.85, 0.4, 0.3), lift=0.1)
    if name == "moon":
        return _tint(_resize(_grey_photo("moon"), size), (0.8, 0.8, 0.78), lift=0.05)
    if name == "space":
        return _resize(_grey_photo("hubble_deep_field"), size).clamp(0, 1) * 1.3
    if name == "page":
        return _tint(_resize(_grey_photo("page"), size), (0.95, 0.93, 0.85), lift=0.15)
    raise KeyError(name)


@lru_cache(maxsize=4)
def texture_bank(size: int) -> torch.Tensor:
    """All context textures at `size` x `size`: (n_contexts, 3, size, size) in [0, 1]."""
    gen = torch.Generator().manual_seed(20230601)  # the bank is fixed: not part of any seed
    textures = [
        _real(name, size) if name in REAL_CONTEXTS else _procedural(name, size, gen)
        for name in CONTEXT_NAMES
    ]
    return torch.stack(textures).clamp(0, 1).contiguous()
