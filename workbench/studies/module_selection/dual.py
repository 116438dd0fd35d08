"""The plain dual encoder behind the modular model's retrieval API (study 04's frame-mean baseline)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

import torch
import torch.nn as nn

from workbench.models import ClipBackend


class DualOutput(NamedTuple):
    embeddings: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None


class DualEncoder(nn.Module):
    """The plain dual encoder behind the retrieval API: `run(task, batch)`; clips = mean of frame embeddings."""

    TASKS = ("image_retrieval", "video_retrieval")

    def __init__(self, backend: ClipBackend):
        super().__init__()
        self.backend = backend

    def run(self, task: str, batch: dict[str, torch.Tensor], path=None) -> DualOutput:
        if task not in self.TASKS or path is not None:
            raise ValueError(f"the dual encoder runs only {', '.join(self.TASKS)} along its own path; got "
                             f"task={task!r}, path={path!r}")
        emb = {"text": self.backend.encode_text(batch["text"], normalize=True)}
        if "clips" in batch:
            B, T = batch["clips"].shape[:2]
            frames = self.backend.encode_image(batch["clips"].flatten(0, 1), normalize=True)
            emb["video"] = frames.view(B, T, -1).mean(1)
        else:
            emb["image"] = self.backend.encode_image(batch["images"], normalize=True)
        return DualOutput(emb)

    def encode_text(self, tokens: torch.Tensor) -> SimpleNamespace:
        """`.pooled`: the text embeddings (B, E), as the modular model's text states carry them."""
        return SimpleNamespace(pooled=self.backend.encode_text(tokens, normalize=True))
