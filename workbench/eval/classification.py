"""Classification accuracy: one prediction loop and one top-1 formula for every caller.

    preds, targets = predictions(classifier, batches)       # any iterable of (images, labels)
    top1(preds, targets)                                    # hits / total, a Python float
    evaluate(classifier, data, n=1000)                      # a ClassificationData: every split + ood_avg
    evaluate(classifier, data, n=1000, items=True)          # ... and each test image's hit (<split>_items)
    accuracy(classifier, world, "heldout", n=1000)          # a world split, labels mapped to the classes
    zero_shot_accuracy(model, world, ["heldout"], n=1000)   # zero-shot heads from the world's prompts
    classify_features(image_feats, class_weights)           # cosine argmax on precomputed features
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.checks import check_finite, check_number
from workbench.models import ImageClassifier, eval_mode
from workbench.world import World, zero_shot_templates


@torch.no_grad()
def predictions(classifier: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                resize: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class indices, targets), each (N,) on the CPU, over `batches` of (images, labels),
    in eval mode (every flag restored afterwards, also on error); images are `resize`d if given."""
    device = next(classifier.parameters()).device
    preds, targets = [], []
    with eval_mode(classifier):
        for images, labels in batches:
            images = images.to(device)
            if resize is not None:
                images = resize(images)
            preds.append(classifier(images).argmax(-1).cpu())
            targets.append(labels)
    return torch.cat(preds), torch.cat(targets)


def top1(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1]: the number of hits over the number of targets (at least one: an accuracy over
    no targets would read as 0 %).

    `preds` and `targets` are class indices of one shape (N,): a mismatch would broadcast (4 predictions
    against 1 target gave 4.0), logits (N, C) or float labels would compare the wrong things."""
    for name, t in (("preds", preds), ("targets", targets)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(t).__name__}")
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} have dtype {t.dtype}; accepted: integer class indices (logits? take "
                            f"logits.argmax(-1))")
    if preds.ndim != 1 or preds.shape != targets.shape:
        raise ValueError(f"preds have shape {tuple(preds.shape)} and targets {tuple(targets.shape)}; accepted: "
                         "one prediction per target, both (N,)")
    if not len(targets):
        raise ValueError("preds and targets are empty (shape (0,)); accepted: at least one prediction and target")
    return int((preds == targets.to(preds.device)).sum()) / len(targets)


def classify_features(image_feats: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Image features (B, D) and class embeddings (C, D) -> predicted class indices (B,) by cosine."""
    check_finite(image_feats, "image_feats")
    check_finite(class_weights, "class_weights")
    if image_feats.ndim != 2 or class_weights.ndim != 2 or image_feats.shape[1] != class_weights.shape[1]:
        raise ValueError(f"image_feats have shape {tuple(image_feats.shape)} and class_weights "
                         f"{tuple(class_weights.shape)}; accepted: (B, D) and (C, D) with the same D")
    return (F.normalize(image_feats.float(), dim=-1) @ F.normalize(class_weights.float(), dim=-1).T).argmax(-1)


# -- a ClassificationData (workbench.data) ------------------------------------------------------
def split_accuracy(classifier: nn.Module, data, split: str, n: int | None = None, batch_size: int = 250) -> float:
    """Top-1 accuracy of `classifier` (pixels -> logits over data.classnames) on an evaluation split."""
    if n is not None:
        check_number(n, "n", integer=True, ge=1)
    check_number(batch_size, "batch_size", integer=True, ge=1)
    return top1(*predictions(classifier, data.eval_batches(split, n, batch_size)))


def evaluate(classifier: nn.Module, data, n: int | None = None, items: bool = False) -> dict[str, Any]:
    """Accuracy on every evaluation split of `data`, plus "ood_avg" (mean over the OOD splits).

    `items`: also each test image's hit, `<split>_items` (0/1 in the split's order), and `ood_avg_items`
    (the OOD splits' hits one after another, each weighted by N / (splits x its split's size), so that
    their mean is ood_avg when the splits differ in size): for paired intervals over test items
    (`workbench.studies.kit.stats`)."""
    if n is not None:
        check_number(n, "n", integer=True, ge=1)
    accs: dict[str, Any] = {}
    hits: dict[str, list[int]] = {}
    for s in data.eval_splits:
        preds, targets = predictions(classifier, data.eval_batches(s, n, 250))
        accs[s] = top1(preds, targets)
        if items:
            hits[s] = (preds == targets).int().tolist()
    if data.ood_splits:
        accs["ood_avg"] = sum(accs[s] for s in data.ood_splits) / len(data.ood_splits)
    if items:
        accs.update({f"{s}_items": h for s, h in hits.items()})
        if data.ood_splits:
            total, k = sum(len(hits[s]) for s in data.ood_splits), len(data.ood_splits)
            accs["ood_avg_items"] = [h if total == k * len(hits[s]) else h * total / (k * len(hits[s]))
                                     for s in data.ood_splits for h in hits[s]]
    return accs


# -- world splits ------------------------------------------------------------------------------
def _world_batches(world: World, split: str, n: int, batch_size: int, offset: int,
                   label_map: dict[int, int] | None):
    for start in range(offset, offset + n, batch_size):
        b = world.batch(split, range(start, min(start + batch_size, offset + n)))
        labels = b.labels if label_map is None else torch.tensor([label_map[int(y)] for y in b.labels])
        yield b.images, labels


def predict(classifier: nn.Module, world: World, split: str, n: int, batch_size: int = 250,
            offset: int = 0, label_map: dict[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets), each (n,): targets are indices into the classifier's classes."""
    check_number(n, "n", integer=True, ge=1)
    check_number(batch_size, "batch_size", integer=True, ge=1)
    check_number(offset, "offset", integer=True, ge=0)
    resize = getattr(getattr(classifier, "model", None), "resize", None)
    return predictions(classifier, _world_batches(world, split, n, batch_size, offset, label_map), resize)


def accuracy(classifier: nn.Module, world: World, split: str, n: int = 1000, batch_size: int = 250,
             classnames: Sequence[str] | None = None) -> float:
    """Top-1 accuracy in [0, 1]; `classnames` (the classifier's, in order) map world labels."""
    check_number(n, "n", integer=True, ge=1)
    check_number(batch_size, "batch_size", integer=True, ge=1)
    names = classnames or getattr(classifier, "classnames", None) or world.split_classes(split)
    label_map = {World.classes.index(c): i for i, c in enumerate(names)}
    missing = set(world.split_classes(split)) - set(names)
    if missing:
        raise ValueError(f"split {split!r} shows classes the classifier does not know: {sorted(missing)}")
    return top1(*predict(classifier, world, split, n, batch_size, label_map=label_map))


def zero_shot_accuracy(model, world: World, splits: Sequence[str], n: int = 1000,
                       templates: Sequence[Callable | str] | None = None,
                       classnames: Sequence[str] | None = None) -> dict[str, float]:
    """Zero-shot accuracy of a CLIP-like model per split: a head over the split's classes (or
    `classnames`) from `templates` (default: the world's prompts, `zero_shot_templates()`)."""
    if isinstance(splits, str):
        raise TypeError(f"splits={splits!r} is one string; accepted: a sequence of split names, e.g. ({splits!r},)")
    check_number(n, "n", integer=True, ge=1)
    templates = zero_shot_templates() if templates is None else templates
    out = {}
    for split in splits:
        names = list(classnames or world.split_classes(split))
        clf = ImageClassifier(model, model.zero_shot_head(names, templates))
        out[split] = accuracy(clf, world, split, n=n, classnames=names)
    return out
