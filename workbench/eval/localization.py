"""Does a CAM point at the object? Scores against the world's ground-truth masks.

- IoU: the CAM, upsampled bilinearly to the mask's resolution and re-normalised by its
  maximum, thresholded at `threshold`, against the object mask.
- Pointing game: the CAM's argmax (at mask resolution) lies on the object.

`localization_table` scores our Grad-CAM and rollout, the pytorch-grad-cam gallery, and a
centre prior (a fixed Gaussian blob, no model) that any method should beat to be worth a look.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from workbench.checks import check_device, check_finite, check_number
from workbench.methods.cam import ALL_CAM_METHODS, CAM_METHODS, check_method, compute_cam, library_cam, normalize_max
from workbench.world import World

CENTRE_PRIOR = "centre_prior"
DEFAULT_METHODS: tuple[str, ...] = ALL_CAM_METHODS


def upsample_cam(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W) bilinear, re-normalised to a per-image maximum of 1."""
    if tuple(cam.shape[-2:]) != tuple(size):
        cam = F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    return normalize_max(cam.float().clamp_min(0))


def localization_scores(cam: torch.Tensor, gt_masks: torch.Tensor, threshold: float = 0.5) -> dict:
    """IoU and pointing game of CAMs (B, h, w) against object masks (B, H, W) bool.

    Returns {"iou": mean, "pointing": mean, "iou_per_image": (B,), "pointing_per_image": (B,)}.
    """
    if cam.ndim != 3 or gt_masks.ndim != 3 or cam.shape[0] != gt_masks.shape[0]:
        raise ValueError(f"cam (B, h, w) and gt_masks (B, H, W) must share B; got {tuple(cam.shape)} "
                         f"and {tuple(gt_masks.shape)}")
    threshold = check_number(threshold, "threshold", gt=0, lt=1)
    check_finite(cam, "cam")  # a NaN CAM's argmax lands anywhere: it scored pointing 1.0
    if gt_masks.dtype != torch.bool and not torch.isin(gt_masks.unique(), torch.tensor([0, 1])).all():
        raise ValueError("gt_masks hold values other than 0 and 1; accepted: object masks (B, H, W), bool or 0/1")
    gt = gt_masks.to(cam.device).bool()
    up = upsample_cam(cam, tuple(gt.shape[-2:]))  # (B, H, W)
    pred = up > threshold
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    hit = gt.flatten(1).gather(1, up.flatten(1).argmax(1, keepdim=True))[:, 0].float()  # (B,)
    return {"iou": float(iou.mean()), "pointing": float(hit.mean()),
            "iou_per_image": iou, "pointing_per_image": hit}


def centre_prior(batch: int, size: int, sigma: float = 0.25, device=None) -> torch.Tensor:
    """A fixed isotropic Gaussian blob (B, size, size), peak 1 at the centre, sigma as a
    fraction of the side. A reference: objects in the world are often near the middle."""
    check_number(batch, "batch", integer=True, ge=1)
    check_number(size, "size", integer=True, ge=1)
    sigma = check_number(sigma, "sigma", gt=0)
    device = check_device(device) if device is not None else None
    r = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size - 0.5
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return blob.expand(batch, size, size)


def _true_targets(classifier: nn.Module, world: World, labels: torch.Tensor) -> torch.Tensor:
    names = classifier.classnames
    missing = {World.classes[int(y)] for y in labels} - set(names)
    if missing:
        raise ValueError(f"the split shows classes the classifier does not know: {sorted(missing)}")
    return torch.tensor([names.index(World.classes[int(y)]) for y in labels])


def _cam_for(method: str, classifier: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if method == CENTRE_PRIOR:
        return centre_prior(images.shape[0], images.shape[-1], device=images.device)
    if method in CAM_METHODS:
        return compute_cam(classifier, images, targets, method)
    return library_cam(classifier, images, targets, method)  # full-resolution maps from the library


def localization_table(classifier: nn.Module, world: World, split: str = "id_test", n: int = 64,
                       methods: Sequence[str] | None = None, threshold: float = 0.5,
                       batch_size: int = 32, progress: bool = True) -> list[dict]:
    """One row per method (and the centre prior): {method, iou, pointing, n, seconds}.

    CAMs are taken for the true class, on the first `n` images of `split`; images are resized
    to the model's resolution, CAMs compared at the world's mask resolution.
    """
    if isinstance(methods, str):
        raise ValueError(f"methods={methods!r} is one string; accepted: a sequence of methods, e.g. ({methods!r},)")
    methods = tuple(DEFAULT_METHODS if methods is None else methods)
    check_number(n, "n", integer=True, ge=1)
    check_number(batch_size, "batch_size", integer=True, ge=1)
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods={methods!r} repeat a method; accepted: distinct methods")
    for m in methods:
        if m != CENTRE_PRIOR:
            check_method(m)
    methods = methods + ((CENTRE_PRIOR,) if CENTRE_PRIOR not in methods else ())
    device = next(classifier.parameters()).device
    sums = {m: {"iou": 0.0, "pointing": 0.0, "seconds": 0.0} for m in methods}
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc=f"localisation on {split}", disable=not progress):
        b = world.batch(split, range(start, min(start + batch_size, n)))
        images = classifier.model.resize(b.images.to(device))
        targets = _true_targets(classifier, world, b.labels).to(device)
        for m in methods:
            t0 = time.perf_counter()
            cam = _cam_for(m, classifier, images, targets)
            sums[m]["seconds"] += time.perf_counter() - t0
            s = localization_scores(cam, b.masks, threshold)
            sums[m]["iou"] += s["iou"] * len(b)
            sums[m]["pointing"] += s["pointing"] * len(b)
    return [{"method": m, "iou": sums[m]["iou"] / n, "pointing": sums[m]["pointing"] / n, "n": n,
             "seconds": sums[m]["seconds"]} for m in methods]
