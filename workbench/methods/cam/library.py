"""The pytorch-grad-cam gallery on the same models: CAM methods we do not re-implement.

`library_cam(classifier, images, targets, "GradCAMPlusPlus")` runs the library's class on
the same layer our Grad-CAM reads (the last vision block's first LayerNorm, CLS dropped and
tokens folded into a grid), or on any `target_layer` you name (a CNN's last conv layer).
The library puts the model in eval mode, zeroes and fills gradients; here all of that is
undone afterwards: training flags, `requires_grad` and `.grad` come back as they were.
"""
from __future__ import annotations

import contextlib
import functools
import math
import types
from typing import Callable
from unittest import mock

import torch
import torch.nn as nn
import tqdm

from ._common import TargetsLike, backend_of, eval_mode, resolve_targets, untouched_parameters
from .gradcam import token_layer

LIBRARY_CAMS: tuple[str, ...] = ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "EigenCAM", "ScoreCAM")


@contextlib.contextmanager
def _no_library_bars(method_name: str):
    """pytorch-grad-cam's ScoreCAM (and ablation CAMs) draw a tqdm bar per image into the cell's output:
    for the duration of the call, their module sees a tqdm whose bars are disabled."""
    import importlib

    module = importlib.import_module(_library_class(method_name).__module__)
    if not hasattr(module, "tqdm"):
        yield
        return
    quiet = types.SimpleNamespace(tqdm=functools.partial(tqdm.tqdm, disable=True))
    with mock.patch.object(module, "tqdm", quiet):
        yield


def _library_class(method_name: str) -> type:
    if method_name not in LIBRARY_CAMS:
        raise ValueError(f"unknown pytorch-grad-cam method {method_name!r}; accepted: {', '.join(LIBRARY_CAMS)}")
    import pytorch_grad_cam

    return getattr(pytorch_grad_cam, method_name)


def tokens_to_maps(tokens: torch.Tensor) -> torch.Tensor:
    """pytorch-grad-cam reshape transform for ViT tokens: (B, 1 + N, C) -> (B, C, g, g)."""
    patches = tokens[:, 1:]
    g = math.isqrt(patches.shape[1])
    if g * g != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not fold into a square grid")
    return patches.transpose(1, 2).reshape(tokens.shape[0], -1, g, g)


def library_cam(classifier: nn.Module, images: torch.Tensor, targets: TargetsLike = None,
                method_name: str = "GradCAM", target_layer: nn.Module | None = None,
                reshape_transform: Callable | None = None) -> torch.Tensor:
    """pytorch-grad-cam maps (B, H, W) at image resolution, min-max scaled to [0, 1] by the library.

    classifier: any module mapping pixels (B, 3, H, W) to logits (B, C). With `target_layer`
    None it must be a CLIP ImageClassifier and the token layer + reshape are chosen for you.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = _library_class(method_name)
    if target_layer is None:
        backend_of(classifier).check_images(images)
        target_layer, reshape_transform = token_layer(classifier.model), tokens_to_maps
    with eval_mode(classifier), untouched_parameters(classifier):
        with torch.no_grad():
            logits = classifier(images)
        t = resolve_targets(classifier, logits, targets).tolist()
        cam = cls(model=classifier, target_layers=[target_layer], reshape_transform=reshape_transform)
        try:
            # frozen parameters: let the input carry the graph so gradient methods still see grads
            cam.compute_input_gradient = True
            cam.batch_size = 256  # ScoreCAM: masked copies per forward pass
            with _no_library_bars(method_name):
                maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(i) for i in t])
        finally:
            cam.activations_and_grads.release()
    return torch.from_numpy(maps).to(images.device)  # (B, H, W)
