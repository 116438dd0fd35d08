"""The paper's method: CE on clean images + w * MSE(f_student(x_masked), f_teacher(x_masked)).

"Masked Images Are Counterfactual Samples for Robust Fine-tuning" (CVPR 2023): CAM-selected
patches of each training image are replaced (object or context mask, filled from other images)
and the fine-tuned image tower must reproduce the frozen zero-shot tower's features on the
counterfactual, while the CE loss sees only the clean image.

Two ways to get the CAM:
  cam_source="student"  the paper's code: the CAM of the true class on the model being trained,
                        every step. The paper's code spends four passes (CAM forward+backward,
                        student and teacher on masked images, student on clean images); here the
                        clean forward that the CE loss needs *is* the CAM forward (its graph is
                        kept), the CAM's backward reaches only the activations it reads (no weight
                        gradients), and the teacher runs under no_grad.
  cam_source="cached"   CAMs computed once by the frozen teacher and looked up per training
                        image index (`TeacherCams`); the clean and masked student passes are
                        batched into one forward.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Iterator, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.checks import Check, check_fields
from workbench.engine import Loss
from workbench.methods.cam import (
    CAM_METHODS,
    FILLS,
    MASK_KINDS,
    apply_fill,
    gradcam_from_tokens,
    make_mask,
    recorded_attention,
    rollout_from_attention,
    target_score,
    token_layer,
)
from workbench.methods.objectives import batch_accuracy
from workbench.models import ImageClassifier

from .cam_cache import TeacherCams
from .objectives import TeacherMixin

CAM_SOURCES = ("student", "cached")


@dataclass(frozen=True)
class MaskSpec:
    """How counterfactual images are made (paper headline: object mask, single fill, threshold 0.3)."""

    kind: Literal[MASK_KINDS] = "object"  # "object" | "context" | "random"
    fill: Literal[FILLS] = "single"  # "constant" | "mean" | "single" | "multi"
    # object mask = CAM > threshold (CAMs are normalised to [0, 1])
    threshold: Annotated[float, Check(gt=0, lt=1, note="CAMs are normalised to [0, 1]")] = 0.3
    p: Annotated[float, Check(ge=0, le=1, note="a probability")] = 0.5  # random mask: each patch with probability p
    cam_method: Literal[CAM_METHODS] = "rollout"  # "rollout" (the paper's code) | "gradcam"

    def __post_init__(self):
        check_fields(self)


@contextmanager
def _kept_output(module: nn.Module) -> Iterator[dict]:
    """Record `module`'s output without cutting the graph (the CE loss still backpropagates through it)."""
    store: dict = {}
    handle = module.register_forward_hook(lambda mod, args, out: store.__setitem__("out", out))
    try:
        yield store
    finally:
        handle.remove()


def logits_with_cam(classifier: ImageClassifier, images: torch.Tensor, labels: torch.Tensor,
                    method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward -> (logits (B, C) with their graph intact, CAM (B, g, g) of `labels`, detached).

    The same maps as workbench.methods.cam.compute_cam (eval-mode forward; CLIP towers here have
    no dropout), without a second forward: the CAM gradient stops at the activations it reads.
    The maps come from the same kernels (`gradcam_from_tokens`, `rollout_from_attention`).
    """
    backend = classifier.model
    if method == "gradcam":
        with _kept_output(token_layer(backend)) as store:
            logits = classifier(images)
        act = store["out"]
        (grad,) = torch.autograd.grad(target_score(logits, labels), act, retain_graph=True)
        return logits, gradcam_from_tokens(act, grad, backend.grid_size)
    if method == "rollout":
        with recorded_attention(backend.vision_attention) as attn:
            logits = classifier(images)
        grads = torch.autograd.grad(target_score(logits, labels), attn, retain_graph=True, allow_unused=True)
        return logits, rollout_from_attention(attn, grads, backend.grid_size)
    raise ValueError(f"unknown CAM method {method!r}; accepted: {', '.join(CAM_METHODS)}")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The randomness of one step's masks and fills: a pure function of (seed, step)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))


class MaskDistillObjective(TeacherMixin):
    """CE(student(x), y) + w * MSE(f_student(x_masked), f_teacher(x_masked)), f before normalisation.

    distill_fraction < 1 distils a random subset of k = round(fraction * B) masked images per step
    (not in the paper): the masked student and teacher passes shrink by that factor while the
    distillation term stays an unbiased estimate of the full-batch one.
    """

    def __init__(self, student: ImageClassifier, teacher: ImageClassifier, w: float = 30.0,
                 spec: MaskSpec = MaskSpec(), cam_source: str = "student",
                 teacher_cams: TeacherCams | None = None, seed: int = 0, distill_fraction: float = 1.0):
        super().__init__()
        if not 0.0 < distill_fraction <= 1.0:
            raise ValueError(f"distill_fraction={distill_fraction!r}; accepted: 0 < fraction <= 1 (1 = the paper)")
        if cam_source not in CAM_SOURCES:
            raise ValueError(f"cam_source={cam_source!r}; accepted: {', '.join(CAM_SOURCES)}")
        if cam_source == "cached" and spec.kind != "random" and teacher_cams is None:
            raise ValueError("cam_source='cached' needs teacher_cams (build them with build_teacher_cams)")
        self.student, self.teacher = student, teacher
        self.w, self.spec, self.cam_source, self.seed = float(w), spec, cam_source, int(seed)
        self.teacher_cams = teacher_cams
        self.distill_fraction = float(distill_fraction)

    def forward(self, images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor | None = None,
                step: int = 0) -> Loss:
        gen = step_generator(self.seed, step)
        B, g = len(images), self.student.model.grid_size
        if self.cam_source == "student" and self.spec.kind != "random":
            logits, cam = logits_with_cam(self.student, images, labels, self.spec.cam_method)
            masked, mask = self._counterfactual(images, cam, gen, (B, g, g))
            f_masked = self.student.features(masked)  # (k, D)
        else:  # the mask is known before any student pass: clean and masked go in one batch
            cam = None
            if self.spec.kind != "random":
                if index is None:
                    raise ValueError("cached teacher CAMs are looked up by training-image index: "
                                     "the batch needs 'index'")
                cam = self.teacher_cams.lookup(index, images.device)
            masked, mask = self._counterfactual(images, cam, gen, (B, g, g))
            feats = self.student.features(torch.cat([images, masked]))  # (B + k, D)
            logits, f_masked = self.student.head(feats[:B]), feats[B:]
        with torch.no_grad():
            target = self.teacher.features(masked)  # (k, D)
        ce, distill = F.cross_entropy(logits, labels), F.mse_loss(f_masked, target)
        return Loss(ce + self.w * distill, {"ce": ce.detach(), "distill": distill.detach(),
                                            "masked": mask.float().mean(), "batch_acc": batch_accuracy(logits, labels)})

    def _counterfactual(self, images: torch.Tensor, cam: torch.Tensor | None, gen: torch.Generator,
                        shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec
        mask = make_mask(s.kind, cam, threshold=s.threshold, p=s.p, generator=gen, shape=shape).to(images.device)
        masked = apply_fill(images.detach(), mask, s.fill, self.student.model.patch_size, generator=gen)
        k = max(1, round(self.distill_fraction * len(images)))
        if k < len(images):  # distil a random subset: an unbiased estimate of the full-batch term
            keep = torch.randperm(len(images), generator=gen)[:k].sort().values.to(images.device)
            masked, mask = masked[keep], mask[keep]
        return masked, mask
