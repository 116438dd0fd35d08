"""What the CAM explorer shows, computed: one image's CAM, mask, counterfactual and predictions.

    frames = CamFrames(classifier, images, seed=0)
    f = frames.frame(index=0, target=3, method="gradcam", kind="object", threshold=0.3, p=0.5, fill="single")
    f["cam"], f["mask"], f["counterfactual"], f["before"], f["after"]

`workbench.viz.cam.CamExplorer` draws these frames and wires the controls; nothing here draws.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .compute import compute_cam
from .masks import apply_fill, make_mask, predict_probs


class CamFrames:
    """Frames over a batch of `images` (B, 3, H, W), resized to the classifier's resolution.

    CAMs are cached per (image, class, method); random masks and fills draw from a generator
    seeded with `seed + index`, so the same controls give the same frame.
    """

    def __init__(self, classifier: nn.Module, images: torch.Tensor, seed: int = 0):
        self.classifier = classifier
        device = next(classifier.parameters()).device
        self.images = classifier.model.resize(images.to(device))  # (B, 3, S, S)
        self.seed = seed
        self._cams: dict[tuple, torch.Tensor] = {}

    @property
    def classnames(self) -> tuple[str, ...]:
        return tuple(self.classifier.classnames)

    def __len__(self) -> int:
        return self.images.shape[0]

    def cam(self, index: int, target: int, method: str) -> torch.Tensor:
        """(g, g) CAM of one image for one class, cached."""
        key = (index, target, method)
        if key not in self._cams:
            self._cams[key] = compute_cam(self.classifier, self.images[index:index + 1], [target], method)[0]
        return self._cams[key]

    def frame(self, index: int, target: int, method: str, kind: str, threshold: float, p: float,
              fill: str) -> dict:
        """The CAM (None for random masks), mask (g, g), counterfactual (3, S, S) and class
        probabilities before/after (C,) of image `index`."""
        g = self.classifier.model.grid_size
        gen = torch.Generator().manual_seed(self.seed + index)
        if kind == "random":
            cam, mask = None, make_mask("random", p=p, generator=gen, shape=(1, g, g))[0]
        else:
            cam = self.cam(index, target, method)
            mask = make_mask(kind, cam[None], threshold=threshold)[0]
        full = torch.zeros(self.images.shape[0], g, g, dtype=torch.bool)
        full[index] = mask.cpu()  # the rest of the batch donates patches for single / multi fills
        cf = apply_fill(self.images, full, fill, self.classifier.model.patch_size, generator=gen)[index]
        probs = predict_probs(self.classifier, torch.stack([self.images[index], cf]))
        return {"cam": cam, "mask": mask, "counterfactual": cf, "before": probs[0], "after": probs[1]}
