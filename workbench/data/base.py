"""What every classification data source offers: step-indexed training batches and evaluation splits.

A source has a finite training pool (indices 0..train_size-1, visited in a seeded permutation per
epoch, so a batch is a pure function of (seed, step)), an in-distribution test split and any
number of OOD test splits. Subclasses implement three methods: `train_size`, `train_batch`,
`_eval_batches`. A source also carries the prompt templates its zero-shot heads are built from
(`templates`). Accuracy on the splits is `workbench.eval.evaluate(classifier, data, n)`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Iterator, NamedTuple, Sequence

import torch


class EvalSet(NamedTuple):
    """One evaluation split, materialised: images (N, 3, S, S) in [0, 1], labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor


class ClassificationData(ABC):
    """Base class: subclasses set classnames, templates, image_size, batch_size, seed, id_split, ood_splits."""

    classnames: tuple[str, ...]
    templates: Sequence[Callable | str]  # zero-shot prompts: callables name -> prompt, or "{}" strings
    image_size: int
    batch_size: int
    seed: int
    id_split: str
    ood_splits: tuple[str, ...]

    # -- to implement --------------------------------------------------------------
    @property
    @abstractmethod
    def train_size(self) -> int:
        """Number of distinct training images."""

    @abstractmethod
    def train_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training images (B, 3, S, S) in [0, 1] and labels (B,) (indices into classnames)."""

    def train_labels(self, indices: torch.Tensor) -> torch.Tensor:
        """Labels (B,) of training images; subclasses override when labels are cheaper than images."""
        return self.train_batch(indices)[1]

    @abstractmethod
    def _eval_batches(self, split: str, n: int | None, batch_size: int
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images, labels) chunks of the first n images of a split (all if n is None)."""

    # -- shared --------------------------------------------------------------------
    @property
    def eval_splits(self) -> tuple[str, ...]:
        return (self.id_split, *self.ood_splits)

    def check_split(self, split: str) -> None:
        if split not in self.eval_splits:
            raise KeyError(f"unknown evaluation split {split!r}; this data has: {', '.join(self.eval_splits)}")

    def batch_indices(self, step: int) -> torch.Tensor:
        """Training-pool indices (B,) of a step: a seeded permutation of the pool per epoch."""
        if step < 0:
            raise ValueError(f"step={step!r} must be >= 0")
        n, B = self.train_size, self.batch_size
        pos = torch.arange(step * B, (step + 1) * B)  # (B,) positions in the endless stream
        epoch, within = pos // n, pos % n
        out = torch.empty(B, dtype=torch.long)
        for e in epoch.unique().tolist():
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + e))
            sel = epoch == e
            out[sel] = perm[within[sel]]
        return out

    def batches(self, step: int) -> dict[str, torch.Tensor]:
        """The global batch of a step, as workbench.engine.train wants it."""
        index = self.batch_indices(step)
        images, labels = self.train_batch(index)
        return {"images": images, "labels": labels, "index": index}

    def eval_batches(self, split: str, n: int | None = None, batch_size: int = 250
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.check_split(split)
        if n is not None and n < 1:
            raise ValueError(f"n={n!r} must be >= 1 (or None for the whole split)")
        return self._eval_batches(split, n, batch_size)

    def fingerprint(self) -> dict:
        """What identifies the training pool (for caches keyed by config): override to add more."""
        return {"type": type(self).__name__, "classnames": list(self.classnames),
                "train_size": self.train_size, "image_size": self.image_size}
