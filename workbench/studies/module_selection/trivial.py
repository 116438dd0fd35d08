"""What a task scores without looking at the media: the floor a trained model must clear to have learned it.

Each task's trivial predictor, fit on training-split items (never the test sets) and scored on the same
test items as every cell, with per-item values so that a cell pairs with it item by item:

    qa               the majority answer of each question kind (colour, shape, direction)
    captioning       one caption from the most frequent value of each slot (object, colour, context, direction)
    classification   the majority class
    retrieval        chance: each pair's expected R@1 under a random ranking (its positives over the set size)
    direction        chance, 1 / 4 (the 4-way direction-from-text score)
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from workbench.data import modular_tasks as mt
from workbench.eval.captioning import score_captions
from workbench.eval.retrieval import positives
from workbench.world import DIRECTIONS, World

from .data import EvalData

FIT_ITEMS = 512  # training-split items the predictors count (the start of seed 0's training stream)
FIT_FRAMES = 2  # the fit reads labels, not pixels: the fewest frames a clip can have


def _most_common(values) -> Any:
    """The most frequent value; ties go to the one seen first (Counter keeps insertion order)."""
    return Counter(values).most_common(1)[0][0]


def _chance_r1(captions) -> list[float]:
    """Each pair's expected R@1 (mean of both ways) when the ranking is random: positives / set size."""
    pos = positives(list(captions), len(captions), torch.device("cpu")).float()
    n = len(captions)
    return ((pos.sum(1) / n + pos.sum(0) / n) / 2).tolist()


def trivial_metrics(cfg: Any, world: World, data: EvalData) -> dict:
    """Every task's trivial score on the test sets, with `_items` in the cells' item order."""
    fit = range(FIT_ITEMS)
    out: dict = {}
    sets = data.sets
    if "qa" in sets:
        train = mt.qa(world, cfg.train_split, fit, FIT_FRAMES)
        majority = {k: _most_common(int(a) for a, kk in zip(train.answers, train.kinds) if kk == k)
                    for k in dict.fromkeys(train.kinds)}
        s = sets["qa"]
        hits = [int(majority.get(k) == int(a)) for k, a in zip(s.kinds, s.answers)]
        out.update(qa_acc=sum(hits) / len(hits), qa_acc_items=hits)
        for kind in mt.QUESTION_KINDS:
            h = [x for x, k in zip(hits, s.kinds) if k == kind]
            out[f"qa_acc_{kind}"] = sum(h) / len(h) if h else None
    if "captioning" in sets:
        s = sets["captioning"]
        media = "clip" if s.media.ndim == 5 else "image"
        train = mt.captioning(world, cfg.train_split, fit, media, FIT_FRAMES)
        slots = {k: _most_common(t[k] for t in train.slots) for k in train.slots[0]}
        caption = mt.slot_caption(slots)
        sc = score_captions([caption] * len(s), s.captions, s.slots)
        mean = [sum(sc.slot_items[k][i] for k in sc.slot_items) / len(sc.slot_items) for i in range(sc.n)]
        out.update(slot_mean=sum(mean) / len(mean), slot_mean_items=mean, caption_slots=sc.all_slots,
                   trivial_caption=caption)
    if "classification" in sets:
        train = mt.classification(world, cfg.train_split, fit)
        label = _most_common(int(x) for x in train.labels)
        hits = [int(int(x) == label) for x in sets["classification"].labels]
        out.update(cls_acc=sum(hits) / len(hits), cls_acc_items=hits)
    for task, prefix in (("image_retrieval", "image_"), ("video_retrieval", "video_")):
        if task in sets:
            items = _chance_r1(sets[task].captions)
            out.update({f"{prefix}r1": sum(items) / len(items), f"{prefix}r1_items": items})
    if "video_retrieval" in sets:
        n = 2 * len(sets["video_retrieval"])  # the clips and their reversals
        out.update(dir_acc=1 / len(DIRECTIONS), dir_acc_items=[1 / len(DIRECTIONS)] * n)
    return out
