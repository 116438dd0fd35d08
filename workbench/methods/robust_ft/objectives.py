"""Engine objectives of the robust fine-tuning baselines: forward(**batch) -> Loss.

Every objective takes the same batch, {"images" (B, 3, S, S), "labels" (B,), "index" (B,), "step"},
so one data source drives them all (the linear probe, `workbench.methods.objectives.LinearProbeObjective`,
takes precomputed "features" instead).
A frozen teacher inside an objective stays in eval mode whatever the engine does.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from workbench.engine import Loss
from workbench.methods.objectives import LinearProbeObjective, batch_accuracy
from workbench.models import ImageClassifier

__all__ = ["CrossEntropyObjective", "FeatureDistillObjective", "FlypObjective", "LinearProbeObjective",
           "TeacherMixin"]


class TeacherMixin(nn.Module):
    """Keeps `self.teacher` (frozen) in eval mode when the engine calls .train()."""

    teacher: nn.Module

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self


class CrossEntropyObjective(nn.Module):
    """Full fine-tuning (FT, and the FT stage of LP-FT): CE(classifier(x), y)."""

    def __init__(self, classifier: ImageClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor, labels: torch.Tensor, index=None, step: int = 0) -> Loss:
        logits = self.classifier(images)  # (B, C)
        return Loss(F.cross_entropy(logits, labels), {"batch_acc": batch_accuracy(logits, labels)})


class FeatureDistillObjective(TeacherMixin):
    """FT + feature distillation on clean images: CE(x) + w * MSE(f_student(x), f_teacher(x)).

    f = projected image embedding before normalisation (ImageClassifier.features).
    """

    def __init__(self, student: ImageClassifier, teacher: ImageClassifier, w: float = 30.0):
        super().__init__()
        self.student, self.teacher, self.w = student, teacher, float(w)

    def forward(self, images: torch.Tensor, labels: torch.Tensor, index=None, step: int = 0) -> Loss:
        feats = self.student.features(images)  # (B, D)
        logits = self.student.head(feats)
        with torch.no_grad():
            target = self.teacher.features(images)  # (B, D)
        ce, distill = F.cross_entropy(logits, labels), F.mse_loss(feats, target)
        return Loss(ce + self.w * distill, {"ce": ce.detach(), "distill": distill.detach(),
                                            "batch_acc": batch_accuracy(logits, labels)})


class FlypObjective(nn.Module):
    """FLYP (Goyal et al. 2023): CLIP's contrastive loss between images and their class captions.

    Both towers train; the captions are one prompt per class ("a photo of a {class}."), so the
    text tower encodes each class once per step and the batch indexes into it (same loss and
    gradients as encoding every caption). After training, `fine_tune` rebuilds the classifier's
    head from the tuned text tower (with the zero-shot head's templates).
    """

    def __init__(self, classifier: ImageClassifier, class_tokens: torch.Tensor):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("class_tokens", class_tokens, persistent=False)  # (C, L)
        self.loss = ClipLoss()

    def forward(self, images: torch.Tensor, labels: torch.Tensor, index=None, step: int = 0) -> Loss:
        backend = self.classifier.model
        img = backend.encode_image(images, normalize=True)  # (B, D)
        classes = backend.encode_text(self.class_tokens, normalize=True)  # (C, D)
        loss = self.loss(img, classes[labels], backend.logit_scale.exp())
        logits = img.detach() @ classes.detach().T  # (B, C)
        return Loss(loss, {"batch_acc": batch_accuracy(logits, labels)})
