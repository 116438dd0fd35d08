"""CAM pictures for notebook 01: example images, every CAM method's maps, which methods are cheap enough."""
from __future__ import annotations

import torch

from workbench.checks import check_number
from workbench.data import ClassificationData
from workbench.methods.cam import compute_cam
from workbench.models import ImageClassifier

GALLERY_METHODS = ("gradcam", "rollout", "GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "EigenCAM",
                   "ScoreCAM")


def gallery_methods(classifier: ImageClassifier, quick: bool = False) -> tuple[str, ...]:
    """CAM methods for the gallery: all of them, except ScoreCAM (one forward per channel per image)
    when quick or on towers wider than 256 channels, where it takes minutes on a CPU."""
    backend = classifier.model
    try:
        width = backend.block_attention(backend.vision_blocks[0]).embed_dim
    except NotImplementedError:  # not a ViT image tower: no token CAMs to compare with
        width = 0
    cheap = not quick and 0 < width <= 256
    return GALLERY_METHODS if cheap else tuple(m for m in GALLERY_METHODS if m != "ScoreCAM")


def examples(data: ClassificationData, split: str, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n test images (n, 3, S, S) of a split and their labels (n,), indices into data.classnames."""
    n = check_number(n, "n", integer=True, ge=1)
    images, labels = next(iter(data.eval_batches(split, n, batch_size=n)))
    return images, labels


def cam_maps(classifier: ImageClassifier, images: torch.Tensor, labels: torch.Tensor,
             methods: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """method -> CAMs (B, g, g) of the true class, for the gallery."""
    device = next(classifier.parameters()).device
    return {m: compute_cam(classifier, images.to(device), labels.to(device), m).cpu() for m in methods}
