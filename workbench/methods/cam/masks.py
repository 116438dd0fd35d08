"""Counterfactual images: patch-aligned masks chosen by a CAM (or at random), and fills.

Masks are (B, g, g) bool on the model's patch grid, True = replace that patch:
  object  = CAM > threshold     (hide what the model looks at)
  context = CAM <= threshold    (its complement: hide everything else)
  random  = each patch with probability p

Fills replace the masked patches:
  constant  one colour: each image's own mean colour by default, or `value` (0.0 = the paper's black)
  mean      the batch's mean image (or `value`, e.g. a dataset mean image (3, H, W))
  single    every masked patch of image i from ONE other image pi(i) (pi a random derangement)
  multi     each masked patch from its own random other image
The paper's code uses single (headline: object mask, threshold 0.3) and multi; it has no
black fill (the paper mentions one), and its "no fill" drops tokens inside the model,
which is a model change rather than an image, so it is not offered here.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
from einops import rearrange

from ._common import TargetsLike, eval_mode
from .compute import check_method, compute_cam

MASK_KINDS: tuple[str, ...] = ("object", "context", "random")
FILLS: tuple[str, ...] = ("constant", "mean", "single", "multi")


class Counterfactual(NamedTuple):
    images: torch.Tensor  # (B, 3, H, W) the counterfactual pixels, detached
    mask: torch.Tensor  # (B, g, g) bool, True = replaced patch
    cam: torch.Tensor | None  # (B, g, g) in [0, 1]; None for random masks (no CAM needed)


def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniforms drawn on the generator's device (so a CPU generator drives CUDA work), moved to device."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(*shape, generator=generator, device=gen_device).to(device)


def _randint(high: int, shape: Sequence[int], generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.randint(high, tuple(shape), generator=generator, device=gen_device).to(device)


def make_mask(kind: str, cam: torch.Tensor | None = None, threshold: float = 0.3, p: float = 0.5,
              generator: torch.Generator | None = None,
              shape: Sequence[int] | None = None) -> torch.Tensor:
    """A patch mask (B, g, g) bool. `cam` (B, g, g) in [0, 1] for object/context; for random,
    its shape (or `shape`) sets the size and `generator` the draw."""
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; accepted: {', '.join(MASK_KINDS)}")
    if kind == "random":
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p={p!r} is not a probability; accepted: 0 <= p <= 1")
        if cam is None and shape is None:
            raise ValueError("a random mask needs its size: pass cam (B, g, g) or shape=(B, g, g)")
        size = tuple(cam.shape) if cam is not None else tuple(shape)
        device = cam.device if cam is not None else torch.device("cpu")
        return _rand(size, generator, device) < p
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold={threshold!r} is outside (0, 1); CAMs are normalised to [0, 1]")
    if cam is None:
        raise ValueError(f"a {kind!r} mask is chosen by a CAM: pass cam (B, g, g)")
    if cam.ndim != 3:
        raise ValueError(f"cam must be (B, g, g), got shape {tuple(cam.shape)}")
    obj = cam > threshold
    return obj if kind == "object" else ~obj


def _sources(fill: str, B: int, N: int, generator, device) -> torch.Tensor:
    """For each (image, patch) the index of the image its replacement comes from: (B, N)."""
    if B < 2:
        raise ValueError(f"fill={fill!r} copies patches from other images of the batch; it needs >= 2 images, got {B}")
    if fill == "single":
        # a random cyclic derangement: shuffle, then each image takes its successor's patches
        order = torch.randperm(B, generator=generator, device=generator.device if generator else device).to(device)
        src = torch.empty_like(order)
        src[order] = order.roll(-1)
        return src[:, None].expand(B, N)
    offset = _randint(B - 1, (B, N), generator, device) + 1  # 1..B-1: never the image itself
    return (torch.arange(B, device=device)[:, None] + offset) % B


def _constant_source(fill: str, images: torch.Tensor, value) -> torch.Tensor:
    """The replacement image (B or 1, 3, H, W) for constant / mean fills."""
    if value is not None:
        v = torch.as_tensor(value, dtype=images.dtype, device=images.device)
        if v.ndim == 1:  # a colour (3,)
            v = v.view(1, -1, 1, 1)
        return v.expand_as(images)  # a scalar, a colour, an image (3, H, W) or images (B, 3, H, W)
    if fill == "constant":
        return images.mean(dim=(2, 3), keepdim=True).expand_as(images)  # each image's mean colour
    return images.mean(dim=0, keepdim=True).expand_as(images)  # the batch's mean image


def apply_fill(images: torch.Tensor, mask: torch.Tensor, fill: str, patch_size: int,
               generator: torch.Generator | None = None, value=None) -> torch.Tensor:
    """Replace the masked patches of `images` (B, 3, H, W); `mask` is (B, H/patch, W/patch) bool."""
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; accepted: {', '.join(FILLS)}")
    B, _, H, W = images.shape
    if mask.shape != (B, H // patch_size, W // patch_size) or H % patch_size or W % patch_size:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not tile images of shape {tuple(images.shape)} "
                         f"with patch_size={patch_size}; expected ({B}, {H // patch_size}, {W // patch_size})")
    pattern = "b c (h p1) (w p2) -> b (h w) (c p1 p2)"
    patches = rearrange(images, pattern, p1=patch_size, p2=patch_size)  # (B, N, 3 * p * p)
    m = rearrange(mask.to(images.device, torch.bool), "b h w -> b (h w) 1")  # (B, N, 1)
    if fill in ("single", "multi"):
        src = _sources(fill, B, patches.shape[1], generator, images.device)  # (B, N)
        source = patches[src, torch.arange(patches.shape[1], device=images.device)]  # (B, N, 3 * p * p)
    else:
        source = rearrange(_constant_source(fill, images, value), pattern, p1=patch_size, p2=patch_size)
    out = torch.where(m, source, patches)
    return rearrange(out, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=H // patch_size, p1=patch_size,
                     p2=patch_size)


def counterfactual(classifier: nn.Module, images: torch.Tensor, targets: TargetsLike = None,
                   kind: str = "object", fill: str = "single", threshold: float = 0.3,
                   method: str = "gradcam", generator: torch.Generator | None = None, p: float = 0.5,
                   value=None) -> Counterfactual:
    """CAM -> mask -> filled images, all patch-aligned on the classifier's patch grid.

    The paper's recipe computes the CAM of the true class on the model being trained, so pass
    `targets` = labels; random masks skip the CAM (and return cam=None).
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; accepted: {', '.join(MASK_KINDS)}")
    if fill not in FILLS:
        raise ValueError(f"unknown fill {fill!r}; accepted: {', '.join(FILLS)}")
    check_method(method)
    backend = classifier.model
    if kind == "random":
        backend.check_images(images)
        cam = None
        g = backend.grid_size
        mask = make_mask("random", p=p, generator=generator, shape=(images.shape[0], g, g)).to(images.device)
    else:
        cam = compute_cam(classifier, images, targets, method)
        mask = make_mask(kind, cam, threshold=threshold)
    out = apply_fill(images.detach(), mask, fill, backend.patch_size, generator=generator, value=value)
    return Counterfactual(out, mask, cam)


@torch.no_grad()
def predict_probs(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax class probabilities (B, C) in eval mode, the caller's flags restored."""
    with eval_mode(classifier):
        return classifier(images).softmax(-1)
