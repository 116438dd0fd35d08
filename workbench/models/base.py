"""One interface over every dual-encoder backend the workbench drives.

Convention: images are float pixels in [0, 1], shape (B, 3, S, S) at the model's own
resolution; the backend normalises them. Tokens come from `model.tokenize(texts)`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision import transforms as T


class ClipBackend(nn.Module):
    """Base class: a CLIP-like model with an image tower and a text tower."""

    name: str
    kind: str  # "open_clip" | "hf_clip"
    image_size: int
    patch_size: int
    embed_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    # -- to implement --------------------------------------------------------------
    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> projected image features (B, D)."""
        raise NotImplementedError

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        raise NotImplementedError

    @property
    def vision_blocks(self) -> nn.ModuleList:
        """The residual blocks of the image tower, in order; tokens are (B, 1 + N, width)."""
        raise NotImplementedError

    @property
    def text_blocks(self) -> nn.ModuleList:
        raise NotImplementedError

    @property
    def logit_scale(self) -> torch.Tensor:
        raise NotImplementedError

    def attention_modules(self) -> dict[str, nn.Module]:
        """Qualified name -> attention module, over both towers."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------
    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    def check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got shape {tuple(images.shape)}")
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"images are {images.shape[-2]}x{images.shape[-1]} but {self.name} takes "
                f"{self.image_size}x{self.image_size}; resize them with model.resize(images)"
            )

    def normalize_pixels(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Pixels in [0, 1] (B, 3, S, S) -> image features (B, D), L2-normalised if asked."""
        self.check_images(images)
        feats = self._encode_pixels(self.normalize_pixels(images))
        return F.normalize(feats, dim=-1) if normalize else feats

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """Resize pixel images (B, 3, H, W) to the model's resolution (bicubic, antialiased)."""
        if tuple(images.shape[-2:]) == (self.image_size, self.image_size):
            return images
        out = F.interpolate(images, size=(self.image_size,) * 2, mode="bicubic", antialias=True,
                            align_corners=False)
        return out.clamp(0, 1)

    @property
    def preprocess(self) -> Callable:
        """PIL image -> pixel tensor (3, S, S) in [0, 1] (no normalisation: encode_image does it)."""
        return T.Compose([
            T.Resize(self.image_size, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(self.image_size),
            T.Lambda(lambda im: im.convert("RGB")),
            T.ToTensor(),
        ])

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """Normalised image and text features and the logit scale, as CLIP's loss wants them."""
        return (self.encode_image(images, normalize=True), self.encode_text(tokens, normalize=True),
                self.logit_scale.exp())

    def zero_shot_head(self, classnames: Sequence[str], templates: Sequence[Callable | str] | None = None,
                       ) -> "ZeroShotHead":
        from .zero_shot import ZeroShotHead

        return ZeroShotHead.from_text(self, classnames, templates)

    def __repr__(self) -> str:  # the wrapped model's repr is pages long
        n = sum(p.numel() for p in self.parameters())
        return f"{type(self).__name__}(name={self.name!r}, image_size={self.image_size}, params={n:,})"
