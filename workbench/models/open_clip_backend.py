"""open_clip models (any architecture name, any weights) behind the workbench interface."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
import torch.nn as nn

from .base import ClipBackend


@lru_cache(maxsize=1 << 16)
def _cached_tokens(tokenizer, text: str) -> torch.Tensor:
    return tokenizer([text])[0]


class OpenClipModel(ClipBackend):
    kind = "open_clip"
    # open_clip attention is nn.MultiheadAttention, whose forward calls a fused functional op on
    # in_proj_weight and out_proj.weight: a wrapped out_proj would be bypassed, so no attn_proj role
    LAYER_ROLES = {"attn": ("attn",), "attn_proj": (), "mlp": ("c_fc", "c_proj")}
    LORA_ROLES = ("attn",)  # peft's LoRA has a dedicated nn.MultiheadAttention layer
    LINEAR_ROLES = ("mlp",)
    MATRIX_KINDS = {"c_fc": "fc1", "c_proj": "fc2"}
    PROJECTIONS = ("visual.proj", "text_projection")
    BLOCK_ATTENTION = "attn"
    BLOCK_ATTENTION_INPUT = "ln_1"

    def __init__(self, model: nn.Module, name: str, tokenizer, mean, std):
        super().__init__(mean, std)
        self.model = model
        self.name = name
        self._tokenizer = tokenizer
        visual = model.visual
        size = getattr(visual, "image_size", None)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        patch = getattr(visual, "patch_size", None)
        self.patch_size = int(patch[0] if isinstance(patch, (tuple, list)) else (patch or 0))
        self.embed_dim = int(model.text_projection.shape[1]) if hasattr(model, "text_projection") \
            and isinstance(model.text_projection, torch.Tensor) else int(visual.output_dim)

    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        self.check_tokens(tokens)
        return self.model.encode_text(tokens, normalize=normalize)

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = self.check_texts(texts)
        return torch.stack([_cached_tokens(self._tokenizer, t) for t in texts])

    @property
    def tokenizer(self):
        return self._tokenizer

    def read_only_state(self) -> tuple:
        return (self._tokenizer,)

    def tower_of(self, name: str) -> str:
        if name == "visual" or name.startswith("visual."):
            return "vision"
        return "other" if name == "logit_scale" else "text"

    def tower_modules(self, tower: str) -> list[nn.Module]:
        if tower == "vision":
            return [self.model.visual]
        if tower == "text":  # plus loose parameters (positional embedding, projection): tower_parameters
            names = ("token_embedding", "transformer", "ln_final", "text")
            return [getattr(self.model, n) for n in names if isinstance(getattr(self.model, n, None), nn.Module)]
        raise ValueError(f"tower={tower!r}: accepted are 'vision' and 'text'")

    @property
    def vision_blocks(self) -> nn.ModuleList:
        visual = self.model.visual
        if not hasattr(visual, "transformer"):
            raise NotImplementedError(
                f"{self.name} has a {type(visual).__name__} image tower; the workbench's token-level "
                "methods need a ViT (names like ViT-B-32)")
        return visual.transformer.resblocks

    @property
    def text_blocks(self) -> nn.ModuleList:
        text = getattr(self.model, "transformer", None) or getattr(getattr(self.model, "text", None),
                                                                   "transformer", None)
        if text is None:
            raise NotImplementedError(f"{self.name} has no open_clip text transformer")
        return text.resblocks

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    def attention_modules(self) -> dict[str, nn.Module]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, nn.MultiheadAttention)}
