"""Universal layers: the last k blocks of the text encoder, used by text and by vision.

They are the text encoder's own block objects (one parameter object per weight, shared by both
modalities). Vision enters through learnable latent queries:
    v = into(visual tokens);  z = latents
    layer 1, 3, ...: z = block(z, attending to [z; v])   (latents self-attend and cross-attend to vision)
    layer 2, 4, ...: v = block(v, attending to [v; z])   (roles swap)
    visual tokens += back((v - into(visual tokens)) + mean(z))   (added residually)
`back` starts at zero, so every k starts from the dual encoder's function and training decides what
the shared layers add. With shared=False the blocks are deep copies (the same parameter count, their
own tensors): vision runs the copies, text its own blocks (the capacity-matched control). With
routing="token" each block's LayerNorms and MLP get per-modality copies chosen per token (latent
queries -> the text copies, visual tokens -> the vision copies); the attention weights stay shared.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .blocks import attend, block_forward, block_parts
from .routing import MODALITIES, RoutedParts

TEXT, VISION = MODALITIES.index("text"), MODALITIES.index("vision")


class UniversalLayers(nn.Module):
    """forward(visual (B, N, Dv)) -> (B, N, Dv); `text_block(i, x, mask)` runs text through shared block i."""

    def __init__(self, blocks: list[nn.Module], vision_width: int, text_width: int, latents: int,
                 routing: str = "path", shared: bool = True):
        super().__init__()
        # the text encoder's own last k blocks (the same objects), or copies of them (shared=False)
        self.blocks = nn.ModuleList(blocks if shared else [copy.deepcopy(b) for b in blocks])
        self.shared = shared
        self.routing = routing
        if blocks:
            self.latents = nn.Parameter(torch.randn(latents, text_width) * text_width ** -0.5)
            self.into = nn.Linear(vision_width, text_width)
            if vision_width == text_width:
                nn.init.eye_(self.into.weight)
                nn.init.zeros_(self.into.bias)
            self.back = nn.Linear(text_width, vision_width)
            nn.init.zeros_(self.back.weight)
            nn.init.zeros_(self.back.bias)
        self.routed = nn.ModuleList(RoutedParts(*block_parts(b)[:3]) for b in self.blocks) if routing == "token" \
            else None

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def text_block(self, i: int, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Text through shared block i (the text copies of routed parts are the block's own modules)."""
        return block_forward(self.blocks[i], x, mask=mask)

    def forward(self, visual: torch.Tensor) -> torch.Tensor:
        if not self.blocks:
            return visual
        b = visual.shape[0]
        v0 = self.into(visual)
        v, z = v0, self.latents.expand(b, -1, -1)
        ids_v = torch.full(v.shape[:2], VISION, dtype=torch.long, device=v.device)
        ids_z = torch.full(z.shape[:2], TEXT, dtype=torch.long, device=v.device)
        for i in range(self.depth):
            if i % 2 == 0:
                z = self._layer(i, z, ids_z, torch.cat([z, v], 1), torch.cat([ids_z, ids_v], 1))
            else:
                v = self._layer(i, v, ids_v, torch.cat([v, z], 1), torch.cat([ids_v, ids_z], 1))
        return visual + self.back((v - v0) + z.mean(dim=1, keepdim=True))

    def _layer(self, i: int, q: torch.Tensor, q_ids: torch.Tensor, kv: torch.Tensor,
               kv_ids: torch.Tensor) -> torch.Tensor:
        block = self.blocks[i]
        if self.routed is None:
            return block_forward(block, q, kv)
        r, p = self.routed[i], block_parts(block)
        x = q + p.ls_1(attend(block, r.ln_1(q, q_ids), r.ln_1(kv, kv_ids)))
        return x + p.ls_2(r.mlp(r.ln_2(x, q_ids), q_ids))
