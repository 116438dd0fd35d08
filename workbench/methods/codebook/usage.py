"""The usage tensor (code x modality x class, over a whole evaluation pass) and the statistics drawn from it;
how aligned the modalities' semantic features are before quantisation."""
from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from workbench.checks import check_number

from .model import UniCode, features_of


def _n_classes(data: Any, step_labels: Tensor, classes: int | None) -> int:
    if classes is not None:
        return check_number(classes, "classes", integer=True, ge=1)  # the event classes C; C is background
    if hasattr(data, "classes"):
        return len(data.classes)
    raise ValueError("pass classes= (the number of event classes C; label C is background) when data has no .classes")


def code_usage(model: UniCode, data: Any, step_labels: Tensor | None = None, classes: int | None = None,
               batch_size: int = 256) -> Tensor:
    """(n_codes, modalities, C + 1) int64 counts of (code, modality, step label) over all of `data`.

    data: EventFeatures (its .step_labels (N, T) in [0, C], C = background, and .classes) or a dict of
    features with step_labels= and classes= given. Modalities in model.modalities order.
    """
    batch_size = check_number(batch_size, "batch_size", integer=True, ge=1)
    feats = features_of(data)
    labels = step_labels if step_labels is not None else getattr(data, "step_labels", None)
    if labels is None:
        raise ValueError("code_usage needs step labels (N, T): pass EventFeatures or step_labels=")
    c = _n_classes(data, labels, classes)
    n = len(labels)
    if labels.min() < 0 or labels.max() > c:
        raise ValueError(f"step labels must lie in [0, {c}] (C = {c} is background), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    usage = torch.zeros(model.n_codes, len(model.modalities), c + 1, dtype=torch.long)
    for start in range(0, n, batch_size):
        chunk = {m: x[start: start + batch_size] for m, x in feats.items()}
        lab = labels[start: start + batch_size].reshape(-1).cpu()
        for j, m in enumerate(model.modalities):
            if m not in chunk:
                continue
            codes = model.codes({m: chunk[m]})[m].reshape(-1).cpu()
            flat = codes * (c + 1) + lab
            usage[:, j] += torch.bincount(flat, minlength=model.n_codes * (c + 1)).view(model.n_codes, c + 1)
    return usage


def check_usage(usage: Any) -> Tensor:
    """`usage` if it is a (codes K, modalities M, C + 1) tensor of counts (what `code_usage` returns)."""
    if not isinstance(usage, Tensor) or usage.ndim != 3:
        raise ValueError(f"usage has shape {tuple(getattr(usage, 'shape', ()))} ({type(usage).__name__}); accepted: "
                         "a (codes K, modalities M, classes C + 1) tensor of counts, as code_usage returns")
    return usage


def perplexity(usage: Tensor) -> Tensor:
    """(modalities,) exp(entropy) of each modality's code histogram."""
    usage = check_usage(usage)
    counts = usage.sum(2).float()  # (K, M)
    p = counts / counts.sum(0, keepdim=True).clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-30))).sum(0))


def dead_codes(usage: Tensor) -> int:
    """Number of codes no modality used in the pass."""
    usage = check_usage(usage)
    return int((usage.sum((1, 2)) == 0).sum())


class SharedFraction(NamedTuple):
    two: float  # of the codes used at all, the fraction used by >= 2 modalities
    all: float  # ... used by every modality


def shared_fraction(usage: Tensor) -> SharedFraction:
    usage = check_usage(usage)
    by = (usage.sum(2) > 0).sum(1)  # (K,) modalities using each code
    used = int((by > 0).sum())
    if used == 0:
        return SharedFraction(0.0, 0.0)
    return SharedFraction(float((by >= 2).sum()) / used, float((by == usage.shape[1]).sum()) / used)


def purity(usage: Tensor) -> Tensor:
    """(K,) class entropy (nats) of the steps mapped to each code, all modalities pooled; NaN for unused codes.

    0 = every step on the code has one label; log(C + 1) = labels spread evenly (background counts as a class).
    """
    usage = check_usage(usage)
    counts = usage.sum(1).float()  # (K, C + 1)
    total = counts.sum(1, keepdim=True)
    p = counts / total.clamp_min(1)
    h = -(p * torch.log(p.clamp_min(1e-30))).sum(1)
    return torch.where(total.squeeze(1) > 0, h, torch.full_like(h, float("nan")))


class FeatureAlignment(NamedTuple):
    """Euclidean distances between the modalities' pre-quantisation semantic features, mean over modality pairs."""

    centroid_gap: float  # between the modalities' mean features
    spread: float  # of a modality's features around its own mean
    paired: float  # between two modalities' features of the same (sequence, step)
    unpaired: float  # ... of the same step of different sequences (each sequence against the next)


@torch.no_grad()
def feature_alignment(model: UniCode, data: Any) -> FeatureAlignment:
    """Are two modalities' semantic features of the same step closer than those of unrelated steps?

    A shared codebook can only give two modalities the same index for the same step when their features
    there are nearer to each other than to the rest: `paired` well below `unpaired`. Needs two modalities."""
    z = model.semantic(features_of(data))
    mods = list(z)
    if len(mods) < 2 or len(next(iter(z.values()))) < 2:
        raise ValueError(f"feature alignment needs two modalities and two sequences; got modalities {mods}")
    flat = {m: x.float().flatten(0, 1) for m, x in z.items()}
    mean = {m: x.mean(0) for m, x in flat.items()}
    pairs = [(a, b) for i, a in enumerate(mods) for b in mods[i + 1:]]
    avg = lambda values: float(torch.stack(values).mean())
    return FeatureAlignment(
        centroid_gap=avg([(mean[a] - mean[b]).norm() for a, b in pairs]),
        spread=avg([(flat[m] - mean[m]).norm(dim=1).mean() for m in mods]),
        paired=avg([(z[a] - z[b]).norm(dim=-1).mean() for a, b in pairs]),
        unpaired=avg([(z[a] - z[b].roll(1, dims=0)).norm(dim=-1).mean() for a, b in pairs]))
