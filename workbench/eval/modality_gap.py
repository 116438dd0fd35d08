"""The modality gap between two sets of paired embeddings, and the "Mind the Gap" embedding shift.

    g = gap_metrics(image_emb, text_emb, captions)     # GapMetrics: l2m, l2i, rmg, uniformity, cosines
    d = cosine_distributions(image_emb, text_emb, captions)   # matched (B,), unmatched (M,) cosines
    curve = shift_curve(image_emb, text_emb, lambdas, temperature=0.01,
                        class_text=prompt_emb, labels=labels)  # loss and zero-shot accuracy per lambda
    items = gap_items(image_emb, text_emb)             # field -> per-pair jackknife pseudo-values

Every metric L2-normalises its inputs first (rows of (B, D) tensors, row i of `a` paired with row
i of `b`). The definitions:

* L2M (Liang et al. 2022; Schrodi et al. 2025): ||mean(a) - mean(b)||, the distance between the
  modality centroids;
* L2I (Schrodi et al.): the mean over pairs of ||a_i - b_i||;
* RMG (Schrodi et al.): m / (m + (d_a + d_b) / 2) with m the mean paired dissimilarity
  (1 - cos(a_i, b_i)) / 2 and d_a, d_b the mean dissimilarity between distinct items within
  each modality: 0 when pairs coincide, near 1 when pairs are as far apart as the modalities
  are wide;
* uniformity (Wang & Isola 2020): log mean exp(-t ||x - y||^2) over distinct items, t = 2
  (lower = more uniform on the sphere), per modality and of both together;
* mean paired cosine: mean cos(a_i, b_i); matched / unmatched cosines: cos(a_i, b_j) for the pairs
  and for every non-positive (i, j) (positives: same caption text, when captions are given).

Item-level spread (`gap_items`, `jackknife`): a set metric has no per-pair value of its own, so each
pair i gets its jackknife pseudo-value n theta - (n - 1) theta_(-i) (theta_(-i): the metric without pair
i). Their mean is the jackknife's bias-corrected estimate (theta itself for a statistic linear in the
pairs, such as L2I or the paired cosine) and their variance / n the jackknife variance of theta, which is
what a paired interval over items needs (`workbench.studies.kit.stats.paired` reads `<metric>_items`).

The shift (Liang et al., Fig. 3): with Delta = mean(a) - mean(b), a' = norm(a - lam Delta / 2) and
b' = norm(b + lam Delta / 2): lam = 0 leaves the embeddings, lam > 0 closes the gap, lam < 0 widens it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from workbench.checks import check_features, check_finite, check_number

UNIFORMITY_T = 2.0


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"need paired (B, D) embeddings of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if len(a) < 2:
        raise ValueError(f"need at least 2 pairs, got {len(a)} (shapes {tuple(a.shape)} and {tuple(b.shape)}); "
                         "accepted: (B, D) embeddings with B >= 2")
    check_features(a, "a (the first modality's embeddings)")
    check_features(b, "b (the second modality's embeddings)")
    check_finite(a, "a (the first modality's embeddings)")
    check_finite(b, "b (the second modality's embeddings)")
    return F.normalize(a.detach().double(), dim=-1), F.normalize(b.detach().double(), dim=-1)


def centroid_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """L2M: ||mean(norm a) - mean(norm b)||."""
    a, b = _check_pair(a, b)
    return float((a.mean(0) - b.mean(0)).norm())


def pair_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """L2I: mean over pairs of ||norm a_i - norm b_i||."""
    a, b = _check_pair(a, b)
    return float((a - b).norm(dim=1).mean())


def _within(x: torch.Tensor) -> torch.Tensor:
    """Mean dissimilarity (1 - cos) / 2 over distinct items of one modality (x normalised)."""
    n = len(x)
    cos = x @ x.T
    return ((1 - cos).sum() - (1 - cos.diagonal()).sum()) / (2 * n * (n - 1))


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """RMG: m / (m + (d_a + d_b) / 2), m = mean (1 - cos(a_i, b_i)) / 2, d = within-modality dissimilarity."""
    a, b = _check_pair(a, b)
    m = ((1 - (a * b).sum(1)) / 2).mean()
    denom = m + (_within(a) + _within(b)) / 2
    return float(m / denom) if denom > 0 else 0.0


def uniformity(x: torch.Tensor, t: float = UNIFORMITY_T) -> float:
    """log mean over distinct items of exp(-t ||x_i - x_j||^2) (x normalised here; (N, D), N >= 2)."""
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need (N, D) embeddings with N >= 2, got {tuple(x.shape)}")
    check_finite(x, "x")
    t = check_number(t, "t", gt=0)
    x = F.normalize(x.detach().double(), dim=-1)
    return float(torch.pdist(x).pow(2).mul(-t).exp().mean().log())


def paired_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cos(a_i, b_i)."""
    a, b = _check_pair(a, b)
    return float((a * b).sum(1).mean())


def _positives(captions: Sequence[str] | None, n: int) -> torch.Tensor:
    if captions is None:
        return torch.eye(n, dtype=torch.bool)
    if isinstance(captions, str):
        raise TypeError(f"captions={captions!r} is one string; accepted: a sequence of {n} captions, one per pair")
    if len(captions) != n:
        raise ValueError(f"{len(captions)} captions for {n} pairs: give one caption per pair")
    bad = [c for c in captions if not isinstance(c, str)]
    if bad:
        raise TypeError(f"captions hold {bad[0]!r} ({type(bad[0]).__name__}); accepted: strings")
    ids = {c: k for k, c in enumerate(dict.fromkeys(captions))}
    code = torch.tensor([ids[c] for c in captions])
    return code.view(-1, 1) == code.view(1, -1)


@dataclass(frozen=True)
class CosineDistributions:
    matched: torch.Tensor  # (B,) cos(a_i, b_i)
    unmatched: torch.Tensor  # (M,) cos(a_i, b_j) over non-positive (i, j)


def cosine_distributions(a: torch.Tensor, b: torch.Tensor, captions: Sequence[str] | None = None,
                         ) -> CosineDistributions:
    """Cosines of matched pairs and of unmatched ones (i != j and, with captions, different text)."""
    a, b = _check_pair(a, b)
    cos = (a @ b.T).float()
    pos = _positives(captions, len(a))
    return CosineDistributions(cos.diagonal().clone(), cos[~pos])


@dataclass(frozen=True)
class GapMetrics:
    """The gap between modality a (e.g. image) and b (text) of n pairs."""

    l2m: float
    l2i: float
    rmg: float
    uniformity_a: float
    uniformity_b: float
    uniformity: float  # both modalities together
    paired_cos: float
    unmatched_cos: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def gap_metrics(a: torch.Tensor, b: torch.Tensor, captions: Sequence[str] | None = None) -> GapMetrics:
    """Every gap metric of paired (B, D) embeddings `a`, `b`."""
    d = cosine_distributions(a, b, captions)
    return GapMetrics(l2m=centroid_gap(a, b), l2i=pair_distance(a, b), rmg=relative_gap(a, b),
                      uniformity_a=uniformity(a), uniformity_b=uniformity(b),
                      uniformity=uniformity(torch.cat([a, b])), paired_cos=paired_cosine(a, b),
                      unmatched_cos=float(d.unmatched.mean()) if len(d.unmatched) else float("nan"), n=len(a))


ITEM_FIELDS = ("l2m", "l2i", "rmg", "uniformity", "paired_cos")  # the GapMetrics fields `gap_items` gives


def jackknife(stat: Callable[[torch.Tensor, torch.Tensor], float], a: torch.Tensor, b: torch.Tensor,
              ) -> list[float]:
    """Per-pair jackknife pseudo-values of a set statistic `stat(a, b)` of n paired rows (n >= 3):
    n * stat(a, b) - (n - 1) * stat(a without row i, b without row i), one per pair i."""
    n = len(a)
    if len(b) != n or n < 3:
        raise ValueError(f"the jackknife needs at least 3 pairs of equal count, got {len(a)} and {len(b)}")
    theta = stat(a, b)
    keep = torch.ones(n, dtype=torch.bool)
    out = []
    for i in range(n):
        keep[i] = False
        out.append(n * theta - (n - 1) * stat(a[keep], b[keep]))
        keep[i] = True
    return out


_ITEM_STATS: dict[str, Callable[[torch.Tensor, torch.Tensor], float]] = {
    "l2m": lambda a, b: centroid_gap(a, b),
    "l2i": lambda a, b: pair_distance(a, b),
    "rmg": lambda a, b: relative_gap(a, b),
    "uniformity": lambda a, b: uniformity(torch.cat([a, b])),
    "paired_cos": lambda a, b: paired_cosine(a, b),
}


def gap_items(a: torch.Tensor, b: torch.Tensor, fields: Sequence[str] = ITEM_FIELDS) -> dict[str, list[float]]:
    """field -> the jackknife pseudo-values (one per pair) of that gap metric of paired (B, D) embeddings;
    {} with fewer than 3 pairs (leaving one out must leave a set the metric is defined on)."""
    bad = [f for f in fields if f not in _ITEM_STATS]
    if bad:
        raise ValueError(f"gap_items: unknown field {bad[0]!r}; accepted: {', '.join(_ITEM_STATS)}")
    na, nb = _check_pair(a, b)
    if len(na) < 3:
        return {}
    return {f: jackknife(_ITEM_STATS[f], na, nb) for f in fields}


def shift(a: torch.Tensor, b: torch.Tensor, lam: float, *, delta: torch.Tensor | None = None,
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(norm(a - lam Delta/2), norm(b + lam Delta/2)), Delta = mean(norm a) - mean(norm b) unless given."""
    lam = check_number(lam, "lam")
    if delta is None:
        na, nb = _check_pair(a, b)
        delta = na.mean(0) - nb.mean(0)
    else:
        check_finite(delta, "delta")
    delta = delta.to(a.dtype)
    return (F.normalize(F.normalize(a, dim=-1) - lam * delta / 2, dim=-1),
            F.normalize(F.normalize(b, dim=-1) + lam * delta / 2, dim=-1))


def contrastive_loss(a: torch.Tensor, b: torch.Tensor, temperature: float) -> float:
    """Symmetric InfoNCE of normalised pairs at `temperature` (CLIP's loss, targets on the diagonal)."""
    temperature = check_number(temperature, "temperature", gt=0)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"need paired (B, D) embeddings of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    check_finite(a, "a")
    check_finite(b, "b")
    logits = F.normalize(a.double(), dim=-1) @ F.normalize(b.double(), dim=-1).T / temperature
    target = torch.arange(len(a))
    return float((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)


def contrastive_loss_items(a: torch.Tensor, b: torch.Tensor, temperature: float) -> list[float]:
    """Each pair's share of `contrastive_loss`: (CE of row i of a -> b + CE of row i of b -> a) / 2, whose
    mean is the loss (the per-item values a paired interval over items reads)."""
    temperature = check_number(temperature, "temperature", gt=0)
    check_finite(a, "a")
    check_finite(b, "b")
    logits = F.normalize(a.double(), dim=-1) @ F.normalize(b.double(), dim=-1).T / temperature
    target = torch.arange(len(a))
    per = (F.cross_entropy(logits, target, reduction="none") + F.cross_entropy(logits.T, target, reduction="none"))
    return (per / 2).tolist()


@dataclass(frozen=True)
class ShiftPoint:
    lam: float
    gap: float  # L2M after the shift
    loss: float  # contrastive loss of the shifted pairs at the temperature
    accuracy: float | None  # zero-shot accuracy of shifted images against shifted class prompts


def shift_curve(a: torch.Tensor, b: torch.Tensor, lambdas: Sequence[float], temperature: float = 0.01,
                class_text: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> list[ShiftPoint]:
    """The embedding-shift experiment: per lambda, the gap, the contrastive loss and (with class
    prompt embeddings (C, D) and labels (B,) of `a`'s items) the zero-shot accuracy."""
    if (class_text is None) != (labels is None):
        raise ValueError("give both class_text (C, D) and labels (B,) for zero-shot accuracy, or neither")
    if isinstance(lambdas, (int, float)):
        raise TypeError(f"lambdas={lambdas!r} is one number; accepted: a sequence of numbers, e.g. ({lambdas!r},)")
    lambdas = [check_number(lam, f"lambdas[{i}]") for i, lam in enumerate(lambdas)]
    if not lambdas:
        raise ValueError("lambdas=[] is empty; accepted: at least one shift, e.g. (0.0, 0.5, 1.0)")
    temperature = check_number(temperature, "temperature", gt=0)
    na, nb = _check_pair(a, b)
    if class_text is not None:
        check_finite(class_text, "class_text")
        if class_text.ndim != 2 or class_text.shape[1] != a.shape[1]:
            raise ValueError(f"class_text has shape {tuple(class_text.shape)}; accepted: (C, {a.shape[1]})")
        if tuple(labels.shape) != (len(a),) or labels.is_floating_point():
            raise ValueError(f"labels have shape {tuple(labels.shape)} and dtype {labels.dtype}; accepted: "
                             f"({len(a)},) integer class indices")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(class_text)):
            raise ValueError(f"labels hold values in [{int(labels.min())}, {int(labels.max())}]; accepted: "
                             f"[0, {len(class_text) - 1}] (one row of class_text per class)")
    delta = na.mean(0) - nb.mean(0)
    out = []
    for lam in lambdas:
        sa, sb = shift(na, nb, float(lam), delta=delta)
        acc = None
        if class_text is not None:
            ct = F.normalize(F.normalize(class_text.detach().double(), dim=-1) + float(lam) * delta / 2, dim=-1)
            acc = float(((sa @ ct.T).argmax(1) == labels.to(sa.device)).double().mean())
        out.append(ShiftPoint(float(lam), float((sa.mean(0) - sb.mean(0)).norm()),
                              contrastive_loss(sa, sb, temperature), acc))
    return out
