"""Cross-modal generalisation through the codebook, measured on held-out sequences.

Freeze the model; train a small head on modality A's quantised features of TRAIN sequences; test it on
modality B's quantised features of HELD-OUT sequences (the authors' AVE script scores its training videos;
here train and test are different sequences by construction). Two heads, as the authors':
sequence classification (Linear, max over time, Linear -> C + 1 classes: a sequence without events is C)
and per-step localisation (Linear, ReLU, Linear -> C + 1 classes per step, C = background).
Also retrieval across modalities through the codes, and TOC's training-free selection of code dimensions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from workbench.checks import Check, check_fields, check_finite, check_number

from .model import UniCode


@dataclass(frozen=True)
class HeadConfig:
    steps: Annotated[int, Check(ge=1)] = 300
    lr: Annotated[float, Check(gt=0)] = 1e-3
    batch_size: Annotated[int, Check(ge=1)] = 64
    hidden: Annotated[int, Check(ge=1)] = 256
    seed: Annotated[int, Check(ge=0)] = 0

    def __post_init__(self):
        check_fields(self)


class TransferResult(NamedTuple):
    source: str
    target: str
    sequence_accuracy: float
    step_accuracy: float
    sequence_items: list[int]  # per held-out sequence: 1 if its class was right
    step_items: list[float]  # per held-out sequence: fraction of its steps labelled right


class _SequenceHead(nn.Module):
    def __init__(self, dim: int, hidden: int, classes: int):
        super().__init__()
        self.inner, self.out = nn.Linear(dim, hidden), nn.Linear(hidden, classes)

    def forward(self, x: Tensor) -> Tensor:  # (N, T, dim) -> (N, C)
        return self.out(self.inner(x).max(dim=1).values)


def _step_head(dim: int, hidden: int, classes: int) -> nn.Module:  # (N, T, dim) -> (N, T, C + 1)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes + 1))


def _classes(data: Any) -> int:
    """C, the number of event classes (label C = background / no event)."""
    if hasattr(data, "classes"):
        return len(data.classes)
    return int(data.step_labels.max())


def _fit(head: nn.Module, x: Tensor, y: Tensor, cfg: HeadConfig) -> nn.Module:
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    head.train()
    for _ in range(cfg.steps):
        idx = torch.randint(len(x), (min(cfg.batch_size, len(x)),), generator=gen)
        logits = head(x[idx])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return head.eval()


def _select(q: dict[str, Tensor], dims: Tensor | None) -> dict[str, Tensor]:
    return {m: (x[..., dims] if dims is not None else x).cpu() for m, x in q.items()}


def transfer_matrix(model: UniCode, train: Any, test: Any, head: HeadConfig = HeadConfig(),
                    dims: Tensor | None = None, sources: tuple[str, ...] | None = None,
                    targets: tuple[str, ...] | None = None) -> dict[tuple[str, str], TransferResult]:
    """(source, target) -> TransferResult for every pair (source == target: the same-modality upper bound).

    train/test: EventFeatures (features, labels (N,), step_labels (N, T), classes) of TRAIN and HELD-OUT
    sequences. dims: code dimensions kept before the head (TOC), None = all.
    """
    sources = tuple(sources or model.modalities)
    targets = tuple(targets or model.modalities)
    for m in sources + targets:
        if m not in model.modalities:
            raise ValueError(f"unknown modality {m!r} for this model; accepted: {model.modalities}")
    c = _classes(train)
    if dims is not None:
        width = model.cfg.dim
        if not isinstance(dims, torch.Tensor) or dims.ndim != 1 or dims.is_floating_point() or dims.dtype == torch.bool:
            raise TypeError(f"dims={dims!r}; accepted: a 1-D integer tensor of code dimensions in [0, {width - 1}] "
                            "(toc_dimensions gives one), or None")
        if len(dims) == 0 or int(dims.min()) < 0 or int(dims.max()) >= width:
            raise ValueError(f"dims={dims.tolist()} are not code dimensions; accepted: at least one dimension in "
                             f"[0, {width - 1}] (the model's dim is {width})")
    q_train, q_test = _select(model.quantized(train), dims), _select(model.quantized(test), dims)
    out = {}
    for a in sources:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(head.seed)
            d = q_train[a].shape[-1]
            seq = _fit(_SequenceHead(d, head.hidden, c + 1), q_train[a], train.labels.cpu(), head)
            step = _fit(_step_head(d, head.hidden, c), q_train[a], train.step_labels.cpu(), head)
        for b in targets:
            with torch.no_grad():
                seq_ok = (seq(q_test[b]).argmax(1) == test.labels.cpu()).int()
                step_ok = (step(q_test[b]).argmax(-1) == test.step_labels.cpu()).float()
            out[(a, b)] = TransferResult(a, b, float(seq_ok.float().mean()), float(step_ok.mean()),
                                         seq_ok.tolist(), step_ok.mean(1).tolist())
    return out


class RetrievalResult(NamedTuple):
    query: str
    gallery: str
    recall_at_1: float
    recall_at_5: float
    median_rank: float
    ranks: list[int]  # per query sequence, 1 = its own pair ranked first


def code_retrieval(model: UniCode, data: Any, query: str, gallery: str, measure: str = "histogram") -> RetrievalResult:
    """Find each sequence's pair in the other modality through its codes alone.

    measure "histogram": cosine similarity of bag-of-codes histograms; "steps": fraction of steps whose codes
    agree (order matters). Ties are broken against the true pair (a rank counts every item scoring >= it).
    """
    if measure not in ("histogram", "steps"):
        raise ValueError(f"unknown retrieval measure {measure!r}; accepted: histogram, steps")
    codes = model.codes(data)
    for m in (query, gallery):
        if m not in codes:
            raise ValueError(f"unknown modality {m!r} for this model; accepted: {model.modalities}")
    qa, ga = codes[query].cpu(), codes[gallery].cpu()
    if measure == "histogram":
        hq = F.one_hot(qa, model.n_codes).sum(1).float()
        hg = F.one_hot(ga, model.n_codes).sum(1).float()
        sim = F.normalize(hq, dim=1) @ F.normalize(hg, dim=1).t()
    else:
        sim = (qa.unsqueeze(1) == ga.unsqueeze(0)).float().mean(-1)
    own = sim.diagonal().unsqueeze(1)
    ranks = (sim >= own).sum(1)  # counts the pair itself
    return RetrievalResult(query, gallery, float((ranks <= 1).float().mean()), float((ranks <= 5).float().mean()),
                           float(ranks.float().median()), ranks.tolist())


def toc_scores(codebook: Tensor) -> Tensor:
    """TOC's per-dimension score of a codebook (K, D) -> (D,): -0.7 * mean product over code pairs + 0.3 * variance."""
    if not isinstance(codebook, torch.Tensor) or codebook.ndim != 2:
        raise ValueError(f"codebook has shape {tuple(getattr(codebook, 'shape', ()))}; accepted: a (codes K, dims D) "
                         "tensor")
    check_finite(codebook, "codebook")
    k = codebook.shape[0]
    if k < 2:
        raise ValueError(f"TOC needs at least 2 codes, got {k}")
    s, sq = codebook.sum(0), (codebook * codebook).sum(0)
    pair_mean = (s * s - sq) / (k * (k - 1))
    return -0.7 * pair_mean + 0.3 * codebook.var(0)


def toc_dimensions(codebook: Tensor, keep: int) -> Tensor:
    """Indices of the `keep` best-scoring code dimensions (TOC), ascending."""
    keep = check_number(keep, "keep", integer=True, ge=1, le=codebook.shape[1])  # of the D code dimensions
    return toc_scores(codebook).topk(keep).indices.sort().values
