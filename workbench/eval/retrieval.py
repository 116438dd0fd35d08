"""Image <-> text retrieval recall@k over paired sets (zero-shot classification: `classification`).

    r = retrieval(model, images, captions)          # RetrievalResult: i2t_r1, i2t_r5, t2i_r1, t2i_r5
    r = evaluate_retrieval(model, world, "novel_test", n=500)
    acc = zero_shot_classification(model, world, "novel_test", n=500)

A set is B images and B captions, caption i being image i's positive. Captions repeat (the
world says "a photo of a pentagon." many times), so a hit is any retrieved caption whose *text*
equals the positive's text (image -> text), or any retrieved image whose own caption text equals
the query text (text -> image). Without caption texts, only the diagonal is positive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from workbench.checks import check_features, check_finite, check_number
from workbench.models import ClipBackend, eval_mode
from workbench.world import World

from .classification import classify_features, zero_shot_accuracy

__all__ = ["RetrievalResult", "classify_features", "encode_images", "encode_pairs", "evaluate_retrieval",
           "positives", "recall_at_k", "retrieval", "retrieval_from_features", "zero_shot_classification"]


@dataclass(frozen=True)
class RetrievalResult:
    """Recall@1/@5 in [0, 1] both ways, over `n` pairs with `n_unique` distinct caption texts."""

    i2t_r1: float
    i2t_r5: float
    t2i_r1: float
    t2i_r5: float
    n: int
    n_unique: int

    @property
    def mean_recall(self) -> float:
        return (self.i2t_r1 + self.i2t_r5 + self.t2i_r1 + self.t2i_r5) / 4

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def positives(captions: Sequence[str] | None, n: int, device: torch.device | None = None) -> torch.Tensor:
    """(n, n) bool: P[i, j] = caption j is a correct answer for image i (same text, or i == j)."""
    n = check_number(n, "n", integer=True, ge=0)
    if captions is None:
        return torch.eye(n, dtype=torch.bool, device=device)
    if isinstance(captions, str):
        raise TypeError(f"captions={captions!r} is one string; accepted: a sequence of {n} captions")
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} pairs: give one caption per image")
    bad = [c for c in captions if not isinstance(c, str)]
    if bad:
        raise TypeError(f"captions hold {bad[0]!r} ({type(bad[0]).__name__}); accepted: strings")
    ids = {c: k for k, c in enumerate(dict.fromkeys(captions))}
    code = torch.tensor([ids[c] for c in captions], device=device)  # (n,)
    return code.view(-1, 1) == code.view(1, -1)


def recall_at_k(sim: torch.Tensor, pos: torch.Tensor, k: int) -> torch.Tensor:
    """Share of rows whose top-k columns (by `sim`, (Q, N)) hold at least one positive (pos (Q, N))."""
    if sim.shape != pos.shape:
        raise ValueError(f"similarity {tuple(sim.shape)} and positives {tuple(pos.shape)} differ in shape")
    k = check_number(k, "k", integer=True, ge=1)
    top = sim.topk(min(k, sim.shape[1]), dim=1).indices  # (Q, k)
    return pos.gather(1, top).any(dim=1).float().mean()


def retrieval_from_features(image_feats: torch.Tensor, text_feats: torch.Tensor,
                            captions: Sequence[str] | None = None) -> RetrievalResult:
    """Features (B, D) of B paired images and captions (normalised here) -> recall@1/@5 both ways."""
    if image_feats.shape != text_feats.shape or image_feats.ndim != 2:
        raise ValueError(f"need (B, D) image and text features of one shape, got "
                         f"{tuple(image_feats.shape)} and {tuple(text_feats.shape)}")
    check_features(image_feats, "image_feats")
    check_features(text_feats, "text_feats")
    check_finite(image_feats, "image_feats")
    check_finite(text_feats, "text_feats")
    if len(image_feats) == 0:
        raise ValueError("image_feats and text_feats hold no pair (shape (0, D)); accepted: at least one pair")
    img, txt = F.normalize(image_feats.float(), dim=-1), F.normalize(text_feats.float(), dim=-1)
    sim = img @ txt.T  # (B_img, B_txt)
    pos = positives(captions, len(img), sim.device)  # symmetric: same relation both ways
    r = {f"{d}_r{k}": float(recall_at_k(s, pos, k)) for d, s in (("i2t", sim), ("t2i", sim.T)) for k in (1, 5)}
    n_unique = len(set(captions)) if captions is not None else len(img)
    return RetrievalResult(**r, n=len(img), n_unique=n_unique)


@torch.no_grad()
def encode_images(model: ClipBackend, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Pixels (B, 3, H, W) in [0, 1], resized to the model's size -> image features (B, D)."""
    check_number(batch_size, "batch_size", integer=True, ge=1)
    device = next(model.parameters()).device
    with eval_mode(model):
        feats = [model.encode_image(model.resize(images[s:s + batch_size].to(device)))
                 for s in range(0, len(images), batch_size)]
    return torch.cat(feats)


@torch.no_grad()
def encode_pairs(model: ClipBackend, images: torch.Tensor, captions: Sequence[str], batch_size: int = 256,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 3, H, W) in [0, 1] and B captions -> (image feats (B, D), text feats (B, D))."""
    if isinstance(captions, str):
        raise TypeError(f"captions={captions!r} is one string; accepted: a sequence of captions, one per image")
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions: retrieval needs pairs")
    check_number(batch_size, "batch_size", integer=True, ge=1)
    device = next(model.parameters()).device
    with eval_mode(model):
        txt = [model.encode_text(model.tokenize(list(captions[s:s + batch_size])).to(device))
               for s in range(0, len(captions), batch_size)]
    return encode_images(model, images, batch_size), torch.cat(txt)


def retrieval(model: ClipBackend, images: torch.Tensor, captions: Sequence[str], batch_size: int = 256,
              ) -> RetrievalResult:
    """Recall@1/@5 both ways of `model` on B (image, caption) pairs."""
    return retrieval_from_features(*encode_pairs(model, images, captions, batch_size), captions)


def evaluate_retrieval(model: ClipBackend, world: World, split: str, n: int = 500, offset: int = 0,
                       ) -> RetrievalResult:
    """Retrieval over samples offset..offset+n of a world split (images with their own captions)."""
    check_number(n, "n", integer=True, ge=1)
    check_number(offset, "offset", integer=True, ge=0)
    b = world.batch(split, range(offset, offset + n))
    return retrieval(model, b.images, b.captions)


def zero_shot_classification(model: ClipBackend, world: World, split: str, n: int = 500,
                             classnames: Sequence[str] | None = None,
                             templates: Sequence[Callable | str] | None = None) -> float:
    """Top-1 accuracy of the zero-shot head built from `model`'s own text tower (classes: the split's),
    with the world's prompts unless `templates` are given (`zero_shot_accuracy` of one split)."""
    return zero_shot_accuracy(model, world, [split], n=n, templates=templates, classnames=classnames)[split]
