"""Our batched Grad-CAM against pytorch-grad-cam's GradCAM on the same layer, images and targets."""
from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator

from workbench.engine import trusted_inputs
from workbench.methods.cam import gradcam, token_layer, tokens_to_maps
from workbench.models import ImageClassifier

from .common import DeviceInfo, Preset, time_interleaved

SPEED_TARGET = 3.0  # ours / library images/s
AGREEMENT_MAX_DIFF = 1e-2  # largest |ours - library| on [0, 1] maps for "the same maps" (fp32)


def agreement(ours: torch.Tensor, library: np.ndarray) -> dict:
    """ours (B, g, g) post-processed as pytorch-grad-cam does its grid maps (min-max scaling and cv2
    bilinear resizing to the image, per layer, then once more after aggregating layers), against the
    library's maps (B, H, W): the largest absolute difference and the per-image Pearson correlation."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    size = (library.shape[-1], library.shape[-2])
    mine = scale_cam_image(scale_cam_image(ours.detach().float().cpu().numpy(), size), size)
    a, b = torch.from_numpy(mine).flatten(1).double(), torch.from_numpy(library).flatten(1).double()
    diff = float((a - b).abs().max())
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    return {"max_abs_diff": diff, "pearson_min": float(corr.min()), "pearson_mean": float(corr.mean()),
            "agree": bool(diff <= AGREEMENT_MAX_DIFF)}


def measure_gradcam(acc: Accelerator, preset: Preset, info: DeviceInfo, clf: ImageClassifier,
                    batch: dict) -> dict:
    """fp32 both (pytorch-grad-cam reads activations into numpy, which has no bf16); ours also under autocast."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    images, labels = batch["images"][: preset.cam_batch], batch["labels"][: preset.cam_batch]
    targets = [ClassifierOutputTarget(int(i)) for i in labels.tolist()]
    layer = token_layer(clf.model)
    lib = GradCAM(model=clf, target_layers=[layer], reshape_transform=tokens_to_maps)
    clf.eval()
    try:
        def ours() -> torch.Tensor:
            with trusted_inputs():
                return gradcam(clf, images, labels)

        def ours_autocast() -> torch.Tensor:
            with trusted_inputs(), acc.autocast():
                return gradcam(clf, images, labels)

        def library() -> np.ndarray:
            with trusted_inputs():
                return lib(input_tensor=images, targets=targets)

        fns = {"ours": ours, "library": library}
        if acc.mixed_precision != "no":
            fns["ours_autocast"] = ours_autocast
        t = time_interleaved(fns, preset, info.device)
        agree = agreement(ours(), library())
        agree_ac = agreement(ours_autocast(), library()) if "ours_autocast" in fns else None
    finally:
        lib.activations_and_grads.release()
        clf.zero_grad(set_to_none=True)
    n = len(labels)
    out = {"batch": n, "layer": "last vision block's ln_1 (tokens, CLS dropped)",
           "images_per_s": {k: n / v.seconds for k, v in t.items()},
           "ratio_ours_over_library": t["library"].seconds / t["ours"].seconds,
           "speed_target": SPEED_TARGET, "maps_fp32": agree,
           "library_note": "GradCAM built once; its call includes the library's own backward into the weights "
                           "and its numpy/cv2 post-processing, as a user gets it"}
    if agree_ac is not None:
        out["ratio_ours_autocast_over_library"] = t["library"].seconds / t["ours_autocast"].seconds
        out["maps_ours_autocast_vs_library_fp32"] = agree_ac
    return out
