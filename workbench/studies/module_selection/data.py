"""Study 04's data: the fixed test sets of every task, the training stream, the decoder's vocabulary."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any  # cfg: the study Config (not imported: config imports the registry, which runs cells)

import torch

from workbench.data import modular_tasks as mt
from workbench.models import ClipBackend
from workbench.world import ALL_CLASSES, COLOR_NAMES, DIRECTIONS, World

TRAIN_STRIDE = 100_000  # seed s trains on indices s * TRAIN_STRIDE + ...: disjoint streams, never the test slice
PROBE_START = 50_000  # the direction probe's training clips: train split, past every seed's stream
VAL_START = 80_000  # the validation slice: train split, past every seed's stream and the probe's clips
REVERSED = {0: 1, 1: 0, 2: 3, 3: 2}  # right <-> left, up <-> down: a clip played backwards


@dataclass
class EvalData:
    """The test sets (indices 0 .. n_eval - 1 of the test split, the same for every cell)."""

    sets: dict[str, mt.TaskSet]
    direction_text: torch.Tensor  # (4 * B, L): each clip's caption with each of the 4 directions, clip-major
    reversed_clips: torch.Tensor  # (B, T, 3, H, W) every clip played backwards
    reversed_direction: torch.Tensor  # (B,) its direction
    probe_clips: torch.Tensor  # (P, T, 3, H, W) train-split clips the direction probe fits on
    probe_direction: torch.Tensor  # (P,) their directions


def caption_vocab(base: ClipBackend) -> tuple[int, ...]:
    """Every token id the world's clip captions and questions can use (the decoder's vocabulary)."""
    from workbench.world.contexts import CONTEXTS

    words = [*ALL_CLASSES, *COLOR_NAMES, *DIRECTIONS, *CONTEXTS.values(), *mt.QUESTIONS.values(),
             "a an moving."]
    ids = base.tokenize(words)
    return tuple(sorted({int(t) for t in ids.flatten()}))


def with_direction(caption: str, direction: str) -> str:
    """The clip caption with its direction word replaced ('... moving left ...' -> '... moving up ...')."""
    head, _, tail = caption.partition(" moving ")
    return f"{head} moving {direction} {tail.split(' ', 1)[1]}"


def eval_data(cfg: Any, world: World, base: ClipBackend, split: str | None = None, start: int = 0) -> EvalData:
    """The fixed sets every cell is measured on: items start .. start + n_eval - 1 of `split` (default the
    test split; the validation slice is `val_data`)."""
    split = split or cfg.test_split
    idx = range(start, start + cfg.n_eval)
    tasks = [t for t in mt.TASK_NAMES if t in cfg.tasks or t.endswith("retrieval")]  # the gap needs both
    sets = mt.task_sets(world, split, idx, cfg.frames, base.tokenize, tasks)
    if "classification" in sets:  # with clips of the same objects: the paths through the temporal modules
        sets["classification"] = mt.classification(world, split, idx, cfg.frames)
    video = sets["video_retrieval"]
    alt = [with_direction(c, d) for c in video.captions for d in DIRECTIONS]
    rev = torch.tensor([REVERSED[int(d)] for d in video.direction])
    probe = mt.task_set("video_retrieval", world, cfg.train_split, range(PROBE_START, PROBE_START + cfg.n_probe),
                        cfg.frames, base.tokenize)
    return EvalData(sets, base.tokenize(alt), video.media.flip(1), rev, probe.media, probe.direction)


def train_batch(cfg: Any, world: World, base: ClipBackend, task: str, seed: int, step: int,
                ) -> dict[str, torch.Tensor]:
    """Step `step` of seed `seed`'s training stream for `task` (a batch dict for ModularModel.run)."""
    start = seed * TRAIN_STRIDE + step * cfg.batch_size
    s = mt.task_set(task, world, cfg.train_split, range(start, start + cfg.batch_size), cfg.frames, base.tokenize)
    return s.batch()


def val_data(cfg: Any, world: World, base: ClipBackend) -> EvalData:
    """The validation slice (n_eval items of the train split from VAL_START): settings are chosen here,
    never on the test sets."""
    return eval_data(cfg, world, base, split=cfg.train_split, start=VAL_START)


def first_items(data: EvalData, n: int) -> EvalData:
    """`data` with each task's test set cut to its first n items (every field that holds one value per
    item: tensors and lists of the set's length); the rest (direction and probe clips) as they are."""
    def cut(s):
        size = len(s)
        if n >= size:
            return s
        keep = lambda v: (isinstance(v, torch.Tensor) and v.ndim > 0 and len(v) == size) or (
            isinstance(v, list) and len(v) == size)
        return dataclasses.replace(s, **{f.name: getattr(s, f.name)[:n] for f in dataclasses.fields(s)
                                         if f.init and keep(getattr(s, f.name))})
    return dataclasses.replace(data, sets={task: cut(s) for task, s in data.sets.items()})
