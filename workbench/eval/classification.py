"""Classification accuracy of an image classifier on splits of the world."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from workbench.world import World


@torch.no_grad()
def predict(classifier: nn.Module, world: World, split: str, n: int, batch_size: int = 250,
            offset: int = 0, label_map: dict[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets), each (n,): targets are indices into the classifier's classes."""
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    preds, targets = [], []
    resize = getattr(getattr(classifier, "model", None), "resize", None)
    for start in range(offset, offset + n, batch_size):
        b = world.batch(split, range(start, min(start + batch_size, offset + n)))
        images = b.images.to(device)
        if resize is not None:
            images = resize(images)
        preds.append(classifier(images).argmax(-1).cpu())
        labels = b.labels if label_map is None else torch.tensor([label_map[int(y)] for y in b.labels])
        targets.append(labels)
    classifier.train(was_training)
    return torch.cat(preds), torch.cat(targets)


def accuracy(classifier: nn.Module, world: World, split: str, n: int = 1000, batch_size: int = 250,
             classnames: Sequence[str] | None = None) -> float:
    """Top-1 accuracy in [0, 1]; `classnames` (the classifier's, in order) map world labels."""
    names = classnames or getattr(classifier, "classnames", None) or world.split_classes(split)
    label_map = {World.classes.index(c): i for i, c in enumerate(names)}
    missing = set(world.split_classes(split)) - set(names)
    if missing:
        raise ValueError(f"split {split!r} shows classes the classifier does not know: {sorted(missing)}")
    p, t = predict(classifier, world, split, n, batch_size, label_map=label_map)
    return float((p == t).float().mean())


def zero_shot_accuracy(model, world: World, splits: Sequence[str], n: int = 1000) -> dict[str, float]:
    """Zero-shot accuracy of a CLIP-like model per split, with the world's prompt templates."""
    from workbench.models import ImageClassifier

    out = {}
    for split in splits:
        names = world.split_classes(split)
        clf = ImageClassifier(model, model.zero_shot_head(names))
        out[split] = accuracy(clf, world, split, n=n)
    return out
