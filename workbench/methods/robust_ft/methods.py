"""Every robust fine-tuning method as (how it builds its classifier, its objective), on the one engine.

    zs = zero_shot_classifier(model, data.classnames, data.templates)
    ft = fine_tune("full_ft", zs, data, FineTuneConfig(steps=40, lr=1e-4))
    lpft = fine_tune("lp_ft", zs, data, cfg, init=fine_tune("linear_probe", zs, data, cfg).classifier)
    wise = wise_ft(zs, ft.classifier, alpha=0.5)

Methods (METHODS): zero_shot (no training), linear_probe (frozen tower, train the head), full_ft
(CE, tower + head), lp_ft (full_ft from the probe's head), wise_ft (weight interpolation of
zero_shot and full_ft: no
training of its own), flyp (contrastive loss on class captions, both towers, head rebuilt from
the tuned text tower), fd (CE + w * feature distillation on clean images), mask_fd (the paper:
distillation on CAM-masked images, CAM from the student every step), mask_fd_cached (the same
with the frozen teacher's CAMs computed once per training image), mask_fd_half (mask_fd distilling
a random half of each batch: the masked student and teacher passes halve, which brings the step
under 2x an FT step; not in the paper).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, NamedTuple

import torch

from workbench.checks import Check, check_fields
from workbench.data import ClassificationData
from workbench.engine import TrainConfig, TrainResult, train
from workbench.models import ImageClassifier, eval_mode
from workbench.world.captions import article

from .cam_cache import TeacherCams
from .classifier import as_teacher, clone_module, set_trainable
from .masking import MaskDistillObjective, MaskSpec
from .objectives import CrossEntropyObjective, FeatureDistillObjective, FlypObjective, LinearProbeObjective


@dataclass(frozen=True)
class MethodInfo:
    name: str
    label: str  # for tables and legends
    trains: bool  # has its own training run
    needs: tuple[str, ...] = ()  # methods whose result it starts from


METHODS: dict[str, MethodInfo] = {m.name: m for m in [
    MethodInfo("zero_shot", "zero-shot", False),
    MethodInfo("linear_probe", "LP", True),
    MethodInfo("full_ft", "FT", True),
    MethodInfo("lp_ft", "LP-FT", True, ("linear_probe",)),
    MethodInfo("wise_ft", "WiSE-FT", False, ("full_ft",)),
    MethodInfo("flyp", "FLYP", True),
    MethodInfo("fd", "FT + FD (clean)", True),
    MethodInfo("mask_fd", "masked FD (student CAM)", True),
    MethodInfo("mask_fd_cached", "masked FD (cached teacher CAM)", True),
    MethodInfo("mask_fd_half", "masked FD (student CAM, half batch)", True),
]}
HALF_FRACTION = 0.5  # mask_fd_half: the share of each batch distilled on masked images
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
FLYP_TEMPLATE = "a photo of {}."  # "a photo of a {class}.", with the right article


def check_methods(methods) -> tuple[str, ...]:
    if isinstance(methods, str):
        methods = (methods,)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; accepted: {', '.join(METHOD_NAMES)}")
    return tuple(methods)


def with_dependencies(methods) -> tuple[str, ...]:
    """The methods plus what they start from, in an order where dependencies come first."""
    out: list[str] = []
    for m in check_methods(methods):
        for dep in (*METHODS[m].needs, m):
            if dep not in out:
                out.append(dep)
    return tuple(out)


@dataclass(frozen=True)
class FineTuneConfig:
    """Optimisation (AdamW, cosine with warm-up, grad clip) and the distillation knobs."""

    steps: Annotated[int, Check(ge=0)] = 100
    lr: Annotated[float, Check(gt=0)] = 1e-4
    weight_decay: Annotated[float, Check(ge=0)] = 0.1
    warmup: Annotated[float, Check(ge=0, lt=1, note="a fraction of the steps")] = 0.05
    grad_clip: Annotated[float | None, Check(gt=0, note="None disables clipping")] = 1.0
    w: Annotated[float, Check(ge=0)] = 30.0  # distillation weight (paper default)
    mask: MaskSpec = field(default_factory=MaskSpec)
    # share of each batch distilled on masked images (1 = the paper)
    distill_fraction: Annotated[float, Check(ge=0, le=1)] = 1.0
    seed: Annotated[int, Check(ge=0)] = 0
    log_every: Annotated[int, Check(ge=1)] = 10

    def __post_init__(self):
        check_fields(self)

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, warmup=self.warmup,
                           grad_clip=self.grad_clip, seed=self.seed, log_every=self.log_every)


class FineTuned(NamedTuple):
    classifier: ImageClassifier
    train: TrainResult | None  # None for methods without training
    seconds_per_step: float  # training wall time / steps (0 without training)


def visited_indices(data: ClassificationData, steps: int) -> torch.Tensor:
    """Training-pool indices the first `steps` batches touch (sorted, unique)."""
    if steps * data.batch_size >= data.train_size:
        return torch.arange(data.train_size)
    return torch.cat([data.batch_indices(s) for s in range(steps)]).unique()


def _step_batches(data: ClassificationData):
    return lambda step: {**data.batches(step), "step": step}


def _run(objective, batches, cfg: FineTuneConfig, desc: str, progress: bool, checkpoint: str | Path | None = None,
         checkpoint_every: int = 0) -> tuple[TrainResult, float]:
    tcfg = replace(cfg.train_config(), checkpoint_every=checkpoint_every)  # how often: not what is computed
    result = train(objective, batches, tcfg, checkpoint=checkpoint, progress=progress, desc=desc)
    return result, result.seconds / max(cfg.steps, 1)


class _Run(NamedTuple):
    """What a method builder hands to the engine."""

    classifier: ImageClassifier
    objective: torch.nn.Module
    batches: object  # step -> dict


@torch.no_grad()
def pool_features(classifier: ImageClassifier, data: ClassificationData, indices: torch.Tensor,
                  batch_size: int = 256) -> torch.Tensor:
    """Frozen image features (len(indices), D) of training images, on the CPU."""
    device = next(classifier.parameters()).device
    out = []
    with eval_mode(classifier):
        for start in range(0, len(indices), batch_size):
            images, _ = data.train_batch(indices[start:start + batch_size])
            out.append(classifier.features(images.to(device)).float().cpu())
    return torch.cat(out)


def _lp(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, **_) -> _Run:
    frozen = not any(p.requires_grad for p in zs.model.parameters())  # then the probe may share the tower
    clf = ImageClassifier(zs.model, clone_module(zs.head)) if frozen else clone_module(zs)
    set_trainable(clf, ["head"])
    idx = visited_indices(data, cfg.steps)
    feats = pool_features(clf, data, idx)  # (n, D): the tower is frozen, so once is enough
    labels = data.train_labels(idx)  # (n,)
    row = torch.full((data.train_size,), -1, dtype=torch.long)
    row[idx] = torch.arange(len(idx))

    def batches(step: int) -> dict:
        i = data.batch_indices(step)
        return {"features": feats[row[i]], "labels": labels[row[i]], "step": step}

    return _Run(clf, LinearProbeObjective(clf.head), batches)


def _ft(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, init=None, **_) -> _Run:
    clf = clone_module(init if init is not None else zs)
    set_trainable(clf, ["vision", "head"])
    return _Run(clf, CrossEntropyObjective(clf), _step_batches(data))


def _lp_ft(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, init=None, **_) -> _Run:
    if init is None:
        raise ValueError("lp_ft fine-tunes from the linear probe: pass init=fine_tune('linear_probe', ...).classifier")
    return _ft(zs, data, cfg, init=init)


def _flyp(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, **_) -> _Run:
    clf = clone_module(zs)
    set_trainable(clf, ["vision", "text"])
    tokens = clf.model.tokenize([FLYP_TEMPLATE.format(article(c)) for c in data.classnames])  # (C, L)
    return _Run(clf, FlypObjective(clf, tokens), _step_batches(data))


def _fd(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, **_) -> _Run:
    clf = clone_module(zs)
    set_trainable(clf, ["vision", "head"])
    return _Run(clf, FeatureDistillObjective(clf, as_teacher(zs), cfg.w), _step_batches(data))


def _mask_fd(zs: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig, source: str = "student",
             teacher_cams: TeacherCams | None = None, **_) -> _Run:
    clf = clone_module(zs)
    set_trainable(clf, ["vision", "head"])
    objective = MaskDistillObjective(clf, as_teacher(zs), cfg.w, cfg.mask, source, teacher_cams, cfg.seed,
                                     cfg.distill_fraction)
    return _Run(clf, objective, _step_batches(data))


_BUILDERS = {"linear_probe": _lp, "full_ft": _ft, "lp_ft": _lp_ft, "flyp": _flyp, "fd": _fd, "mask_fd": _mask_fd,
             "mask_fd_cached": lambda *a, **k: _mask_fd(*a, source="cached", **k),
             "mask_fd_half": lambda zs, data, cfg, **k: _mask_fd(zs, data, replace(cfg, distill_fraction=HALF_FRACTION),
                                                                 **k)}


def fine_tune(method: str, zero_shot: ImageClassifier, data: ClassificationData, cfg: FineTuneConfig,
              *, init: ImageClassifier | None = None, teacher_cams: TeacherCams | None = None,
              progress: bool = True, checkpoint: str | Path | None = None, checkpoint_every: int = 0) -> FineTuned:
    """Train `method` from the zero-shot classifier (left untouched) on `data` for cfg.steps steps.

    mask_fd_cached needs `teacher_cams` covering the visited training images (build_teacher_cams);
    lp_ft needs `init`, the linear probe's classifier. `checkpoint`: the engine's checkpoint file, written
    every `checkpoint_every` steps (0: at the end only); called again with it, an interrupted run resumes
    there with the numbers of an uninterrupted one.
    """
    check_methods(method)
    if method == "zero_shot":
        return FineTuned(clone_module(zero_shot), None, 0.0)
    if method == "wise_ft":
        raise ValueError("wise_ft is not trained: interpolate with wise_ft(zero_shot, fine_tuned, alpha)")
    if data.image_size != zero_shot.model.image_size:
        raise ValueError(f"the data's images are {data.image_size}px but {zero_shot.model.name} takes "
                         f"{zero_shot.model.image_size}px; build the data with image_size="
                         f"{zero_shot.model.image_size} (or the model's preprocess)")
    if method == "mask_fd_cached" and cfg.mask.kind != "random" and teacher_cams is None:
        raise ValueError("mask_fd_cached needs teacher_cams: build_teacher_cams(frozen teacher, data, "
                         "visited_indices(data, steps), method)")
    run = _BUILDERS[method](zero_shot, data, cfg, init=init, teacher_cams=teacher_cams)
    result, per_step = _run(run.objective, run.batches, cfg, f"{method} (seed {cfg.seed})", progress, checkpoint,
                            checkpoint_every)
    clf = run.classifier
    if method == "flyp":  # the head comes from the tuned text tower, with the zero-shot head's prompts
        if zero_shot.head.templates is None:
            raise ValueError("flyp rebuilds the head from the tuned text tower with the zero-shot head's "
                             "templates, but this head has none: build it with zero_shot_classifier(..., templates)")
        clf.head = clf.model.zero_shot_head(data.classnames, zero_shot.head.templates)
    clf.requires_grad_(False)
    return FineTuned(clf.eval(), result, per_step)
