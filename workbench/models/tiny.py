"""tiny-world-clip: a real open_clip `CLIP`, small enough to pretrain on 2 CPU cores."""
from __future__ import annotations

import open_clip

from .open_clip_backend import OpenClipModel

TINY_MODEL_CFG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "patch_size": 8, "width": 128, "layers": 4, "head_width": 32,
                   "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 3},
}
TINY_MEAN = (0.5, 0.5, 0.5)
TINY_STD = (0.25, 0.25, 0.25)


def build_tiny(model_cfg: dict | None = None) -> OpenClipModel:
    """A randomly initialised tiny-world-clip (what `workbench pretrain` starts from)."""
    cfg = model_cfg or TINY_MODEL_CFG
    model = open_clip.model.CLIP(**cfg)
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    return OpenClipModel(model, "tiny-world-clip", tok, TINY_MEAN, TINY_STD)
