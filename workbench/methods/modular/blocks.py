"""One transformer block, whichever library built it: its LayerNorms, MLP, and attention with
separate queries and keys/values (what the universal layers need to let latents attend to visual
tokens with a text layer's own weights).

Two block families are known: open_clip's `ResidualAttentionBlock` (tiny-world-clip, ViT-B-32) and
transformers' `CLIPEncoderLayer` (a Hugging Face CLIP text encoder). Both are pre-norm:
x + attn(ln_1(x)), then x + mlp(ln_2(x)).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class BlockParts(NamedTuple):
    ln_1: nn.Module
    ln_2: nn.Module
    mlp: nn.Module
    ls_1: nn.Module  # layer scale after attention (identity where the block has none)
    ls_2: nn.Module


_IDENTITY = nn.Identity()


def block_parts(block: nn.Module) -> BlockParts:
    """The parts of a pre-norm block; NotImplementedError naming the accepted block types otherwise."""
    if all(hasattr(block, a) for a in ("ln_1", "ln_2", "mlp", "attn")):  # open_clip
        return BlockParts(block.ln_1, block.ln_2, block.mlp, getattr(block, "ls_1", _IDENTITY),
                          getattr(block, "ls_2", _IDENTITY))
    if all(hasattr(block, a) for a in ("layer_norm1", "layer_norm2", "mlp", "self_attn")):  # transformers CLIP
        return BlockParts(block.layer_norm1, block.layer_norm2, block.mlp, _IDENTITY, _IDENTITY)
    raise NotImplementedError(f"a {type(block).__name__} block: the modular model knows open_clip's "
                              "ResidualAttentionBlock and transformers' CLIPEncoderLayer")


def attend(block: nn.Module, q: torch.Tensor, kv: torch.Tensor | None = None,
           mask: torch.Tensor | None = None) -> torch.Tensor:
    """The block's attention on LayerNormed inputs: queries q (B, Lq, D), keys/values kv (B, Lk, D)
    (None: self-attention on q), additive float mask (Lq, Lk) or None -> (B, Lq, D), before the residual."""
    if hasattr(block, "attn") and isinstance(block.attn, nn.MultiheadAttention):
        kv = q if kv is None else kv  # the same object thrice: MultiheadAttention's packed in-projection
        return block.attn(q, kv, kv, need_weights=False, attn_mask=mask)[0]
    attn = getattr(block, "self_attn", None)
    if attn is None or not hasattr(attn, "q_proj"):
        raise NotImplementedError(f"no attention with q/k/v projections in {type(block).__name__}")
    kv = q if kv is None else kv
    b, lq, d = q.shape
    heads = int(attn.num_heads)

    def split(x):  # (B, L, D) -> (B, heads, L, D / heads)
        return x.view(b, x.shape[1], heads, d // heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(attn.q_proj(q)), split(attn.k_proj(kv)), split(attn.v_proj(kv)),
                                         attn_mask=mask)
    return attn.out_proj(out.transpose(1, 2).reshape(b, lq, d))


def block_forward(block: nn.Module, x: torch.Tensor, kv: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None, parts: BlockParts | None = None,
                  kv_norm: nn.Module | None = None) -> torch.Tensor:
    """x (B, L, D) through one pre-norm block; with `kv` (B, M, D) the queries x attend to kv instead
    of to themselves. `parts` replaces the block's LayerNorms/MLP (per-modality copies); `kv_norm`
    normalises kv (default: the same LayerNorm as the queries)."""
    p = parts or block_parts(block)
    h = p.ln_1(x)
    ctx = None if kv is None else (kv_norm or p.ln_1)(kv)
    x = x + p.ls_1(attend(block, h, ctx, mask))
    return x + p.ls_2(p.mlp(p.ln_2(x)))


def copy_block_into(layer: nn.TransformerDecoderLayer, block: nn.Module) -> bool:
    """Start a torch decoder layer's self-attention, MLP and norms from an open_clip block of the same
    width (how mPLUG-2 starts new layers from its text encoder); False (layer untouched) otherwise."""
    if not (isinstance(getattr(block, "attn", None), nn.MultiheadAttention)
            and block.attn.embed_dim == layer.self_attn.embed_dim
            and block.mlp.c_fc.out_features == layer.linear1.out_features):
        return False
    layer.self_attn.load_state_dict(block.attn.state_dict())
    layer.linear1.load_state_dict(block.mlp.c_fc.state_dict())
    layer.linear2.load_state_dict(block.mlp.c_proj.state_dict())
    layer.norm1.load_state_dict(block.ln_1.state_dict())
    layer.norm3.load_state_dict(block.ln_2.state_dict())
    return True
