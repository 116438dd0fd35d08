"""Baselines that need no adapter library: BitFit, full fine-tuning, and a linear probe.

    report = apply_bitfit(model)               # biases only (attention, MLP and LayerNorm biases)
    report = apply_full_finetune(model)        # every parameter of both towers
    report = apply_linear_probe(model, names, templates)  # frozen image tower + a trainable class head
    probe = report.module                      # LinearProbe: pixels -> logits
    loss = LinearProbeObjective(probe)(images=x, labels=y)

The linear probe does not change either encoder, so it has no retrieval numbers of its own
(image-text retrieval with a probed model is exactly zero-shot retrieval); it is reported for
classification only.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from workbench.methods.objectives import LinearProbeObjective
from workbench.models import ClipBackend, ImageClassifier, count_all, count_trainable, freeze

from .report import TuningReport, make_report

__all__ = ["LinearProbe", "LinearProbeObjective", "apply_bitfit", "apply_full_finetune", "apply_linear_probe"]


def apply_bitfit(model: ClipBackend) -> TuningReport:
    """BitFit (Ben Zaken et al. 2022): train every bias term, freeze everything else (in place)."""
    freeze(model)
    names = [n for n, p in model.model.named_parameters() if n.rsplit(".", 1)[-1].endswith("bias")]
    if not names:
        raise ValueError(f"{model.name} has no bias parameters: BitFit has nothing to train")
    params = dict(model.model.named_parameters())
    for n in names:
        params[n].requires_grad_(True)
    return make_report("bitfit", model, names)


def apply_full_finetune(model: ClipBackend, exclude: Sequence[str] = ()) -> TuningReport:
    """Every parameter trainable except those whose name contains one of `exclude` (in place)."""
    if isinstance(exclude, str) or not all(isinstance(e, str) and e for e in exclude):
        raise TypeError(f"exclude={exclude!r}; accepted: a sequence of non-empty name parts, e.g. ({exclude!r},) (a "
                        "string is not one: its letters would exclude almost every parameter)")
    names = []
    for n, p in model.model.named_parameters():
        keep = not any(e in n for e in exclude)
        p.requires_grad_(keep)
        if keep:
            names.append(n)
    return make_report("full_ft", model, names, exclude=tuple(exclude))


class LinearProbe(ImageClassifier):
    """A frozen image tower and a trainable linear head on its normalised projected features.

    The head starts at the zero-shot text embeddings (`init="zero_shot"`, so step 0 is the
    zero-shot classifier, as LP-FT / WiSE-FT start) or at zero (`init="zeros"`, classic LP).
    """

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D), no gradient: the tower is frozen."""
        with torch.no_grad():
            return self.model.encode_image(images)

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.model.eval()  # frozen features: no dropout, whatever the training loop asks
        return self


def apply_linear_probe(model: ClipBackend, classnames: Sequence[str], templates: Sequence[Callable | str],
                       init: str = "zero_shot") -> TuningReport:
    """Freeze `model`, build a LinearProbe over `classnames` (head from `templates`, e.g.
    `workbench.world.zero_shot_templates()`); the report's `.module` is the probe."""
    if init not in ("zero_shot", "zeros"):
        raise ValueError(f"init={init!r}; accepted: 'zero_shot', 'zeros'")
    freeze(model)
    head = model.zero_shot_head(list(classnames), templates)
    if init == "zeros":
        with torch.no_grad():
            head.weight.normal_(0, 1e-3)  # exact zeros give a zero norm; near-zero is the same start
    probe = LinearProbe(model, head)
    return TuningReport("linear_probe", count_trainable(probe), count_all(probe), ("head.weight",),
                        {"classes": len(head.classnames), "init": init}, module=probe)

