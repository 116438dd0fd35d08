"""Caption scoring: per slot (object, colour, context, direction) and CIDEr / BLEU-4 (pycocoevalcap).

    s = score_captions(predicted, references, slots)   # CaptionScores
    s.slot_accuracy["direction"], s.all_slots, s.cider, s.bleu4

A slot is read from a predicted caption as the first word (or phrase, for contexts) of that
slot's vocabulary found in it, whole words only ("semicircle" is not "circle"); it scores 1 when
it equals the target's slot. CIDEr-D and BLEU-4 are pycocoevalcap's pure-Python scorers over
lower-cased, punctuation-stripped words (their Java tokenizer is not used).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from workbench.world import ALL_CLASSES, COLOR_NAMES, DIRECTIONS
from workbench.world.contexts import CONTEXTS

SLOT_VOCAB: dict[str, tuple[str, ...]] = {"object": ALL_CLASSES, "colour": COLOR_NAMES,
                                          "context": tuple(CONTEXTS.values()), "direction": DIRECTIONS}


def words(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: the form both scorers see."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def read_slots(text: str) -> dict[str, str | None]:
    """slot -> the first vocabulary entry of that slot found in `text` (whole words), or None."""
    t = f" {words(text)} "
    out: dict[str, str | None] = {}
    for slot, vocab in SLOT_VOCAB.items():
        hits = [(t.find(f" {words(v)} "), v) for v in vocab]
        hits = [(pos, v) for pos, v in hits if pos >= 0]
        out[slot] = min(hits)[1] if hits else None
    return out


@dataclass(frozen=True)
class CaptionScores:
    slot_accuracy: dict[str, float]  # slot -> share of captions whose slot is right
    all_slots: float  # share of captions with every target slot right
    cider: float
    bleu4: float
    n: int
    slot_items: dict[str, list[int]]  # slot -> 0/1 per caption (paired intervals use them)


def corpus_metrics(predicted: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[float, float]:
    """(CIDEr-D, BLEU-4) of predictions against their reference lists (pycocoevalcap)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if len(predicted) != len(references) or not predicted:
        raise ValueError(f"{len(predicted)} predictions for {len(references)} reference lists: give one "
                         "(non-empty) list per prediction")
    for i, refs in enumerate(references):
        if isinstance(refs, str) or not isinstance(refs, (list, tuple)) or not refs \
                or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"references[{i}]={refs!r}; accepted: a non-empty list of reference captions (strings) "
                             "per prediction (score_captions also takes one caption per prediction)")
    res = {i: [words(p) or "empty"] for i, p in enumerate(predicted)}  # an empty hypothesis breaks BLEU
    gts = {i: [words(r) for r in refs] for i, refs in enumerate(references)}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(cider), float(bleu[3])


def score_captions(predicted: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]],
                   slots: Sequence[dict[str, str]]) -> CaptionScores:
    """Per-slot accuracy against `slots` (one dict per caption) and the corpus metrics against `references`
    (one reference caption, or a list of them, per prediction)."""
    if isinstance(predicted, str) or isinstance(slots, dict):
        raise TypeError(f"predicted={predicted!r} / slots: give sequences, one entry per caption (a single "
                        "caption goes in a list)")
    bad = [p for p in predicted if not isinstance(p, str)]
    if bad:
        raise TypeError(f"predicted holds {bad[0]!r} ({type(bad[0]).__name__}); accepted: caption strings")
    if not (len(predicted) == len(references) == len(slots)):
        raise ValueError(f"{len(predicted)} predictions, {len(references)} references and {len(slots)} slot "
                         "dicts: give one of each per caption")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    unknown = sorted({k for s in slots for k in s} - set(SLOT_VOCAB))
    if unknown:
        raise ValueError(f"unknown slot(s) {unknown}; accepted: {', '.join(SLOT_VOCAB)}")
    for s in slots:  # a target outside its slot's vocabulary could never be read from a caption: always 0
        for slot, target in s.items():
            if target not in SLOT_VOCAB[slot]:
                raise ValueError(f"slot {slot!r} has target {target!r}, which no caption can name; accepted: "
                                 f"{', '.join(SLOT_VOCAB[slot])}")
    read = [read_slots(p) for p in predicted]
    names = [s for s in SLOT_VOCAB if any(s in t for t in slots)]
    items = {s: [int(r[s] == t[s]) for r, t in zip(read, slots) if s in t] for s in names}
    every = [all(r[s] == t[s] for s in t) for r, t in zip(read, slots)]
    cider, bleu4 = corpus_metrics(predicted, refs)
    return CaptionScores({s: sum(v) / len(v) for s, v in items.items()}, sum(every) / len(every), cider, bleu4,
                         len(predicted), items)
