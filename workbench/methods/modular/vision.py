"""The vision encoder shared by images and video frames: tiny-world-clip's (or any open_clip ViT's)
image tower, its own modules and weights, with mPLUG-2's local temporal modules in every block for clips.

A clip (B, T, 3, H, W) runs as B*T frames through the same blocks; with `temporal=True` each block
adds a temporal module's update before and after its self-attention:
    x = x + temporal_before(x);  x = x + attn(ln_1(x));  x = x + temporal_after(x);  x = x + mlp(ln_2(x))
With `temporal_cls=False` the modules update the patch tokens only (mPLUG-2), the CLS token seeing time
only through attention to them. `tokens` averages the frames' tokens over time, so a clip gives tokens
shaped like an image's; `frame_tokens` keeps every frame's. Without temporal modules the average is a
frame-mean encoder, blind to the order of frames.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from workbench.models.base import ClipBackend, check_pixels

from .blocks import attend, block_parts
from .temporal import TemporalModule


class VisionEncoder(nn.Module):
    """Pixels in [0, 1] -> visual tokens (B, 1 + N, width) (`tokens`) -> embedding (B, E) (`pool`)."""

    def __init__(self, visual: nn.Module, image_size: int, mean, std, temporal: bool, name: str = "vision",
                 temporal_cls: bool = True):
        super().__init__()
        for attr in ("_embeds", "_pool", "transformer"):
            if not hasattr(visual, attr):
                raise NotImplementedError(f"{name}: a {type(visual).__name__} image tower; the modular model "
                                          "needs an open_clip VisionTransformer (names like ViT-B-32)")
        self.visual = visual
        self.image_size = int(image_size)
        self.width = int(visual.transformer.width)
        self.name = name
        self.temporal_cls = bool(temporal_cls)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.temporal: nn.ModuleList | None = None
        if temporal:
            self.build_temporal()

    @classmethod
    def from_backend(cls, backend: ClipBackend, temporal: bool, temporal_cls: bool = True) -> VisionEncoder:
        return cls(backend.model.visual, backend.image_size, backend.pixel_mean.flatten().tolist(),
                   backend.pixel_std.flatten().tolist(), temporal, name=backend.name, temporal_cls=temporal_cls)

    def build_temporal(self) -> None:
        """(Re)build the temporal modules, a (before, after) pair per block, their last projection zero."""
        self.temporal = nn.ModuleList(
            nn.ModuleList([TemporalModule(self.width), TemporalModule(self.width)]) for _ in self.blocks)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.visual.transformer.resblocks

    def check(self, pixels: torch.Tensor, key: str) -> None:
        """Raise unless `pixels` are float pixels in [0, 1]: images (B, 3, S, S) or clips (B, T, 3, S, S)."""
        want = {"images": 4, "clips": 5}[key]
        shape = "(B, 3, S, S)" if key == "images" else "(B, T, 3, S, S)"
        if not isinstance(pixels, torch.Tensor):
            raise TypeError(f"{key} must be a torch.Tensor {shape} of float pixels in [0, 1], "
                            f"got {type(pixels).__name__}")
        if pixels.ndim != want or pixels.shape[-3] != 3:
            raise ValueError(f"{key} must be {shape}, got shape {tuple(pixels.shape)}")
        if tuple(pixels.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f"{key} are {pixels.shape[-2]}x{pixels.shape[-1]} but {self.name} takes "
                             f"{self.image_size}x{self.image_size}")
        check_pixels(pixels, key)

    def tokens(self, pixels: torch.Tensor, temporal: bool = False) -> torch.Tensor:
        """images (B, 3, S, S) or clips (B, T, 3, S, S) -> visual tokens (B, 1 + N, width);
        a clip's frame tokens are averaged over time."""
        if pixels.ndim == 5:
            return self.frame_tokens(pixels, temporal).mean(dim=1)
        if temporal:
            raise ValueError("temporal modules need clips (B, T, 3, S, S) with T >= 2; got images "
                             f"{tuple(pixels.shape)}: use a path without 'temporal'")
        self.check(pixels, "images")
        x = self.visual._embeds(self._normalise(pixels))
        for block in self.blocks:
            x = block(x)
        return x

    def frame_tokens(self, clips: torch.Tensor, temporal: bool = False) -> torch.Tensor:
        """clips (B, T, 3, S, S) -> per-frame tokens (B, T, 1 + N, width)."""
        self.check(clips, "clips")
        b, t = clips.shape[:2]
        if temporal:
            if self.temporal is None:
                raise ValueError("this model was built with temporal=False; rebuild it with "
                                 "ModularConfig(temporal=True) or use a path without 'temporal'")
            if t < 2:
                raise ValueError(f"clips have {t} frame(s); the temporal modules need T >= 2 frames "
                                 "(or use a path without 'temporal')")
        x = self.visual._embeds(self._normalise(clips.flatten(0, 1)))  # (B*T, 1 + N, width)
        for i, block in enumerate(self.blocks):
            x = self._video_block(block, self.temporal[i], x, t) if temporal else block(x)
        return x.view(b, t, *x.shape[1:])

    def _temporal_update(self, module: nn.Module, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x plus the temporal module's update: of every token, or of the patch tokens only."""
        if self.temporal_cls:
            return x + module(x, frames)
        return torch.cat([x[:, :1], x[:, 1:] + module(x[:, 1:], frames)], dim=1)

    def _video_block(self, block: nn.Module, temporal: nn.ModuleList, x: torch.Tensor, frames: int) -> torch.Tensor:
        p = block_parts(block)
        x = self._temporal_update(temporal[0], x, frames)
        x = x + p.ls_1(attend(block, p.ln_1(x)))
        x = self._temporal_update(temporal[1], x, frames)
        return x + p.ls_2(p.mlp(p.ln_2(x)))

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Visual tokens (B, 1 + N, width) -> the tower's projected embedding (B, E) (not normalised)."""
        pooled, _ = self.visual._pool(tokens)
        return pooled @ self.visual.proj if self.visual.proj is not None else pooled

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - self.pixel_mean.to(pixels.dtype)) / self.pixel_std.to(pixels.dtype)
