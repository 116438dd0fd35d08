"""Hugging Face `transformers` CLIPModel behind the workbench interface."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .base import ClipBackend, check_mean_std

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class HFClipModel(ClipBackend):
    kind = "hf_clip"
    # plain nn.Linear q/k/v/out projections and MLP fc1/fc2: every tuner can target all of them
    LAYER_ROLES = {"attn": ("self_attn",), "attn_proj": ("q_proj", "k_proj", "v_proj", "out_proj"),
                   "mlp": ("fc1", "fc2")}
    LORA_ROLES = ("attn_proj",)
    LINEAR_ROLES = ("attn_proj", "mlp")
    MATRIX_KINDS = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "out_proj": "out", "fc1": "fc1", "fc2": "fc2"}
    PROJECTIONS = ("visual_projection", "text_projection")
    BLOCK_ATTENTION = "self_attn"
    BLOCK_ATTENTION_INPUT = "layer_norm1"

    def __init__(self, model, name: str, tokenizer=None, mean=OPENAI_MEAN, std=OPENAI_STD):
        super().__init__(mean, std)
        self.model = model
        self.name = name
        vcfg = model.config.vision_config
        self.image_size = int(vcfg.image_size)
        self.patch_size = int(vcfg.patch_size)
        self.embed_dim = int(model.config.projection_dim)
        self.context_length = int(model.config.text_config.max_position_embeddings)
        self._hf_tokenizer = tokenizer
        if tokenizer is None:  # no vocabulary files offline: CLIP's BPE ships with open_clip
            from open_clip.tokenizer import SimpleTokenizer

            self._bpe = SimpleTokenizer(context_length=self.context_length)

    @classmethod
    def from_pretrained(cls, name_or_dir: str) -> HFClipModel:
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(name_or_dir)
        try:
            tok = AutoTokenizer.from_pretrained(name_or_dir)
        except (OSError, ValueError):
            tok = None
        mean, std = OPENAI_MEAN, OPENAI_STD
        proc = Path(name_or_dir) / "preprocessor_config.json"
        if proc.is_file():
            import json

            try:
                cfg = json.loads(proc.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ValueError(f"{proc} is not valid JSON ({e}); expected transformers' image processor "
                                 "config with image_mean and image_std") from None
            if not isinstance(cfg, dict):
                raise ValueError(f"{proc} holds a JSON {type(cfg).__name__}; expected an object")
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
            check_mean_std(mean, std, f"{proc}: image_")
        return cls(model, name=f"hf:{name_or_dir}", tokenizer=tok, mean=tuple(mean), std=tuple(std))

    @classmethod
    def from_config(cls, config) -> HFClipModel:
        from transformers import CLIPModel

        # the BPE tokenizer's end-of-text id; CLIP pools the text at that token
        config.text_config.eos_token_id = 49407
        return cls(CLIPModel(config), name="hf:random-init")

    def _encode_pixels(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.vision_model(pixel_values=x)
        return self.model.visual_projection(out.pooler_output)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        # the causal mask keeps padding after end-of-text out of the pooled token: no attention mask
        self.check_tokens(tokens)
        out = self.model.text_model(input_ids=tokens)
        feats = self.model.text_projection(out.pooler_output)
        return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = self.check_texts(texts)
        if self._hf_tokenizer is not None:
            enc = self._hf_tokenizer(list(texts), padding="max_length", truncation=True,
                                     max_length=self.context_length, return_tensors="pt")
            return enc["input_ids"]
        return self._bpe(list(texts))

    @property
    def tokenizer(self):
        """The transformers tokenizer, or open_clip's CLIP BPE when the model came without one."""
        return self._hf_tokenizer if self._hf_tokenizer is not None else self._bpe

    def read_only_state(self) -> tuple:
        return tuple(t for t in (self._hf_tokenizer, getattr(self, "_bpe", None)) if t is not None)

    def tower_of(self, name: str) -> str:
        if name.startswith("vision_model") or name.startswith("visual_projection"):
            return "vision"
        return "text" if name.startswith(("text_model", "text_projection")) else "other"

    def tower_modules(self, tower: str) -> list[nn.Module]:
        if tower == "vision":
            return [self.model.vision_model, self.model.visual_projection]
        if tower == "text":
            return [self.model.text_model, self.model.text_projection]
        raise ValueError(f"tower={tower!r}: accepted are 'vision' and 'text'")

    @property
    def vision_blocks(self) -> nn.ModuleList:
        return self.model.vision_model.encoder.layers

    @property
    def text_blocks(self) -> nn.ModuleList:
        return self.model.text_model.encoder.layers

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    def attention_modules(self) -> dict[str, nn.Module]:
        return {n: m for n, m in self.model.named_modules() if n.endswith("self_attn")}
