"""One entry point over every CAM: ours (`gradcam`, `rollout`) and the pytorch-grad-cam gallery."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._common import TargetsLike, backend_of, normalize_max
from .gradcam import gradcam
from .library import LIBRARY_CAMS, library_cam
from .rollout import relevance_rollout

CAM_FUNCTIONS: dict[str, Callable] = {"gradcam": gradcam, "rollout": relevance_rollout}
CAM_METHODS: tuple[str, ...] = tuple(CAM_FUNCTIONS)
ALL_CAM_METHODS: tuple[str, ...] = CAM_METHODS + LIBRARY_CAMS


def check_method(method: str) -> str:
    if method not in ALL_CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; accepted: {', '.join(ALL_CAM_METHODS)} "
                         f"(ours: {', '.join(CAM_METHODS)}; the rest are pytorch-grad-cam classes)")
    return method


def compute_cam(classifier: nn.Module, images: torch.Tensor, targets: TargetsLike = None,
                method: str = "gradcam") -> torch.Tensor:
    """CAM maps (B, g, g) in [0, 1] on the model's patch grid, whichever method computes them.

    Library methods produce image-resolution maps; they are averaged over each patch
    (area pooling) and re-normalised by the per-image maximum, so every method yields
    patch-aligned maps that `make_mask` can threshold.
    """
    check_method(method)
    backend_of(classifier).check_images(images)  # float pixels in [0, 1] at the model's size, named here
    if method in CAM_FUNCTIONS:
        return CAM_FUNCTIONS[method](classifier, images, targets)
    grid = backend_of(classifier).grid_size
    maps = library_cam(classifier, images, targets, method)  # (B, H, W)
    return normalize_max(F.adaptive_avg_pool2d(maps[:, None], grid)[:, 0])
