"""The text encoder: tiny-world-clip's text tower (or a Hugging Face CLIP text model), its own
modules and weights, run block by block so that its last k blocks can serve as universal layers."""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from workbench.models.base import ClipBackend

from .blocks import block_forward


class TextStates(NamedTuple):
    tokens: torch.Tensor  # (B, L, width) after the final LayerNorm
    pooled: torch.Tensor  # (B, E) projected embedding at the end-of-text token (not normalised)
    padding: torch.Tensor  # (B, L) bool, True past the end-of-text token


class TextEncoder(nn.Module):
    """Token ids (B, L) -> `TextStates`; causal self-attention, pooled at the end-of-text token (argmax id)."""

    def __init__(self, token_embedding: nn.Embedding, positional: nn.Parameter, blocks: nn.ModuleList,
                 final_norm: nn.Module, projection: nn.Parameter | nn.Module | None, heads: int):
        super().__init__()
        self.token_embedding = token_embedding
        self.positional = positional
        self.blocks = blocks
        self.final_norm = final_norm
        self.projection = projection
        self.heads = int(heads)
        self.width = int(token_embedding.weight.shape[1])
        self.context_length = int(positional.shape[0])

    @classmethod
    def from_backend(cls, backend: ClipBackend) -> TextEncoder:
        """The text tower of an open_clip CLIP backend (tiny-world-clip, ViT-B-32) or an HFClipModel."""
        m = backend.model
        if hasattr(m, "text_model"):
            return cls.from_hf(m.text_model, m.text_projection)
        if not all(hasattr(m, a) for a in ("token_embedding", "positional_embedding", "transformer", "ln_final")):
            raise NotImplementedError(f"{backend.name}: the modular model needs an open_clip CLIP text tower "
                                      "(token_embedding, transformer, ln_final) or a transformers CLIP text model")
        heads = m.transformer.resblocks[0].attn.num_heads
        return cls(m.token_embedding, m.positional_embedding, m.transformer.resblocks, m.ln_final,
                   m.text_projection, heads)

    @classmethod
    def from_hf(cls, text_model: nn.Module, projection: nn.Module | None = None) -> TextEncoder:
        """A transformers CLIPTextTransformer/CLIPTextModel (random init from a CLIPTextConfig is fine)
        and its projection (CLIPTextModelWithProjection.text_projection)."""
        inner = getattr(text_model, "text_model", text_model)
        emb = inner.embeddings
        return cls(emb.token_embedding, emb.position_embedding.weight, inner.encoder.layers, inner.final_layer_norm,
                   projection, inner.encoder.layers[0].self_attn.num_heads)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def check(self, tokens: torch.Tensor, key: str = "text") -> None:
        if not isinstance(tokens, torch.Tensor) or tokens.dtype not in (torch.int64, torch.int32):
            what = tokens.dtype if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise TypeError(f"{key} must be integer token ids (B, L) from model.tokenize, got {what}")
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.context_length:
            raise ValueError(f"{key} must be token ids (B, L) with L <= {self.context_length}, "
                             f"got shape {tuple(tokens.shape)}")
        vocab = self.token_embedding.num_embeddings
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
            raise ValueError(f"{key} hold ids in [{int(tokens.min())}, {int(tokens.max())}]; "
                             f"accepted: 0 ... {vocab - 1}")

    def causal_mask(self, length: int, like: torch.Tensor) -> torch.Tensor:
        """Additive (L, L) mask: -inf above the diagonal."""
        return torch.full((length, length), float("-inf"), dtype=like.dtype, device=like.device).triu_(1)

    def encode(self, tokens: torch.Tensor, universal: nn.Module | None = None) -> TextStates:
        """All text blocks; the last k (the universal layers) through `universal.text_block` when given
        (so a token-routed model sends text to the text copies)."""
        self.check(tokens)
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional[:length].to(self.token_embedding.weight.dtype)
        mask = self.causal_mask(length, x)
        first_shared = self.depth - (universal.depth if universal is not None else 0)
        for i, block in enumerate(self.blocks):
            if i >= first_shared:
                x = universal.text_block(i - first_shared, x, mask)
            else:
                x = block_forward(block, x, mask=mask)
        x = self.final_norm(x)
        eot = tokens.argmax(dim=-1)  # the end-of-text id is the largest in CLIP's vocabulary
        pooled = x[torch.arange(x.shape[0], device=x.device), eot]
        pooled = self._project(pooled)
        padding = torch.arange(length, device=tokens.device)[None, :] > eot[:, None]
        return TextStates(x, pooled, padding)

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.projection is None:
            return pooled
        if isinstance(self.projection, nn.Module):
            return self.projection(pooled)
        return pooled @ self.projection
