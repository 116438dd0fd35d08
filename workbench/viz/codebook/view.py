"""The plain data the codebook explorer draws (`CodebookView`), checked once when it is built."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .base import _as_usage, _classes, _codes_numpy, _modalities
from .exemplars import exemplar_kind


@dataclass
class CodebookView:
    """Plain data the explorer draws, independent of how the model is built.

    checkpoints: one usage tensor (K, M, C + 1) per training checkpoint (an evaluation pass each);
    codes: per checkpoint, modality -> code indices (N, T) of the N sequences one can pick;
    step_labels: (N, T) in [0, C] (C = background); classes: the C event class names;
    modalities: names of the usage tensor's M modalities (keys of `codes`); steps: the training step
    of each checkpoint (default 0..S-1); exemplars: modality -> frames (N, T, 3, H, W) / waveforms
    (N, T, L) / captions (N lists of T strings) of the same N sequences, or None.
    """
    checkpoints: Sequence[Any]
    codes: Sequence[Mapping[str, Any]]
    step_labels: Any
    classes: Sequence[str]
    modalities: Sequence[str] = ("video", "audio", "text")
    steps: Sequence[int] | None = None
    exemplars: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.checkpoints = [_as_usage(u) for u in self.checkpoints]
        if not self.checkpoints:
            raise ValueError("CodebookView needs at least one checkpoint usage tensor (K, M, C + 1)")
        shapes = {u.shape for u in self.checkpoints}
        if len(shapes) != 1:
            raise ValueError(f"checkpoint usage tensors differ in shape: {sorted(shapes)}")
        K, M, C1 = shapes.pop()
        self.modalities = _modalities(self.checkpoints[0], self.modalities)
        self.classes = _classes(self.checkpoints[0], self.classes)[:-1]
        self.steps = list(range(len(self.checkpoints))) if self.steps is None else [int(s) for s in self.steps]
        if len(self.steps) != len(self.checkpoints) or len(self.codes) != len(self.checkpoints):
            raise ValueError(f"{len(self.checkpoints)} checkpoints but {len(self.steps)} steps and "
                             f"{len(self.codes)} code sets; give one of each per checkpoint")
        self.step_labels = np.asarray(torch.as_tensor(self.step_labels).cpu()).astype(np.int64)
        if self.step_labels.ndim != 2 or self.step_labels.min() < 0 or self.step_labels.max() > C1 - 1:
            raise ValueError(f"step_labels of shape {self.step_labels.shape} with values in "
                             f"[{self.step_labels.min()}, {self.step_labels.max()}]; expected (N, T) in [0, {C1 - 1}]")
        self.codes = [self._check_codes(i, c, K) for i, c in enumerate(self.codes)]
        for m, data in (self.exemplars or {}).items():
            if m not in self.modalities:
                raise ValueError(f"exemplars for unknown modality {m!r}; modalities: {self.modalities}")
            exemplar_kind(data)
            if len(data) != len(self.step_labels):
                raise ValueError(f"{len(data)} {m} exemplars for {len(self.step_labels)} sequences")

    def _check_codes(self, i: int, codes: Mapping[str, Any], K: int) -> dict[str, np.ndarray]:
        codes = _codes_numpy(codes)
        if set(codes) != set(self.modalities):
            raise ValueError(f"checkpoint {i}: codes for {sorted(codes)}; expected {sorted(self.modalities)}")
        for m, c in codes.items():
            if c.shape != self.step_labels.shape or c.min() < 0 or c.max() >= K:
                raise ValueError(f"checkpoint {i}: {m} codes of shape {c.shape} in [{c.min()}, {c.max()}]; "
                                 f"expected {self.step_labels.shape} (like step_labels) in [0, {K - 1}]")
        return codes

    @property
    def n_codes(self) -> int:
        return self.checkpoints[0].shape[0]

