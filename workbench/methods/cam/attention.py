"""Attention probabilities out of a CLIP image tower, with the tower's outputs unchanged.

open_clip calls `nn.MultiheadAttention` with `need_weights=False` (a fused kernel that never
materialises the probabilities) and Hugging Face CLIP may use SDPA. `recorded_attention`
temporarily swaps each attention module's `forward` for an explicit one that computes
softmax(q k^T / sqrt(d)) itself, keeps the probabilities (still in the autograd graph, so the
gradient of a logit with respect to them is exact), and returns the same output as the
original within float tolerance. The originals come back when the block exits.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


def _explicit_mha(mha: nn.MultiheadAttention, store: list) -> Callable:
    """A drop-in forward for a self-attention nn.MultiheadAttention that records (B, h, T, T)."""
    if mha.in_proj_weight is None:
        raise NotImplementedError("attention recording needs a packed in_proj_weight (self-attention)")
    heads = mha.num_heads

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key is not query or value is not query:
            raise NotImplementedError("attention recording supports self-attention only")
        if key_padding_mask is not None:
            raise NotImplementedError("attention recording does not support key_padding_mask")
        x = query if mha.batch_first else query.transpose(0, 1)  # (B, T, D)
        q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (rearrange(t, "b t (h d) -> b h t d", h=heads) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # (B, h, T, T)
        if attn_mask is not None:
            mask = attn_mask.view(x.shape[0], heads, *attn_mask.shape[-2:]) if attn_mask.ndim == 3 else attn_mask
            scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        probs = scores.softmax(-1)
        store.append(probs)
        out = F.dropout(probs, mha.dropout, mha.training) @ v  # (B, h, T, d)
        out = mha.out_proj(rearrange(out, "b h t d -> b t (h d)"))
        out = out if mha.batch_first else out.transpose(0, 1)
        weights = (probs.mean(1) if average_attn_weights else probs) if need_weights else None
        return out, weights

    return forward


def _explicit_hf(attn: nn.Module, store: list) -> Callable:
    """A drop-in forward for a Hugging Face CLIPAttention that records (B, h, T, T)."""

    def forward(hidden_states, attention_mask=None, **kwargs):
        q, k, v = (rearrange(proj(hidden_states), "b t (h d) -> b h t d", d=attn.head_dim)
                   for proj in (attn.q_proj, attn.k_proj, attn.v_proj))
        scores = q @ k.transpose(-2, -1) * attn.scale  # (B, h, T, T)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = scores.softmax(-1, dtype=torch.float32).to(q.dtype)
        store.append(probs)
        out = F.dropout(probs, attn.dropout, attn.training) @ v  # (B, h, T, d)
        return attn.out_proj(rearrange(out, "b h t d -> b t (h d)")), probs

    return forward


def _explicit_forward(attn: nn.Module) -> Callable:
    """The recording forward for an attention module, chosen by its structure."""
    if isinstance(attn, nn.MultiheadAttention):
        return _explicit_mha
    if all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "out_proj")):
        return _explicit_hf
    raise NotImplementedError(
        f"cannot record attention in a {type(attn).__name__}: expected an nn.MultiheadAttention (open_clip) "
        f"or a module with q_proj / k_proj / v_proj / out_proj (Hugging Face CLIPAttention); pass the "
        f"attention modules themselves, e.g. backend.vision_attention")


@contextmanager
def recorded_attention(modules: Iterable[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Within the block, each forward through the attention `modules` (e.g. `backend.vision_attention`)
    appends one (B, heads, T, T) tensor per module, in order, to the yielded list. The modules'
    forwards are restored on exit."""
    store: list[torch.Tensor] = []
    patched = []
    try:
        for attn in modules:
            make = _explicit_forward(attn)
            previous = attn.__dict__.get("forward")  # an instance-level forward someone set
            attn.forward = make(attn, store)
            patched.append((attn, previous))
        yield store
    finally:
        for attn, previous in patched:
            if previous is None:
                del attn.forward
            else:
                attn.forward = previous
