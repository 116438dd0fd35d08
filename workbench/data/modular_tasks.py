"""Task datasets on the world for the modular model (study 04): one named set per task.

    sets = task_sets(World(), "novel_test", range(64), tokenize=model.tokenize)
    sets["video_retrieval"].captions[0]      # 'a red star moving left on grass.'
    sets["qa"].questions[0], sets["qa"].answers[0]   # 'what colour is the object?', index into ANSWERS
    batch = sets["qa"].batch()               # {"clips", "text", "targets"}: what ModularModel.run takes

Every set is a pure function of (world, split, indices): the same arguments give the same tensors.
The tasks:

* `image_retrieval` -- scenes and the world's own captions (positives by caption text);
* `video_retrieval` -- clips (the object moves right/left/up/down) and captions that name the
  direction, "{a colour} {object} moving {direction} {context}.";
* `captioning` -- clips (or images) with the slot template as the target and the slots
  (object, colour, context, direction) for per-slot scoring;
* `qa` -- one question per clip about its colour, shape or direction (cycling with the index, so
  the three kinds are balanced), the answer an index into `ANSWERS` (colours, then classes, then
  directions);
* `classification` -- scenes and their class (an index into `World.classes`).

Tokenising is the caller's: pass the model's `tokenize` (texts -> (B, L) ids); data never
imports a model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from workbench.world import ALL_CLASSES, COLOR_NAMES, DIRECTIONS, World
from workbench.world.captions import article
from workbench.world.contexts import CONTEXTS

Tokenize = Callable[[Sequence[str]], torch.Tensor]  # texts -> (B, L) token ids

TASK_NAMES = ("image_retrieval", "video_retrieval", "captioning", "qa", "classification")
SLOTS = ("object", "colour", "context", "direction")
QUESTION_KINDS = ("colour", "shape", "direction")
QUESTIONS = {"colour": "what colour is the object?", "shape": "what shape is the object?",
             "direction": "which way does the object move?"}
ANSWERS: tuple[str, ...] = (*COLOR_NAMES, *ALL_CLASSES, *DIRECTIONS)  # the QA head's classes
ANSWER_KIND: tuple[str, ...] = (("colour",) * len(COLOR_NAMES) + ("shape",) * len(ALL_CLASSES)
                                + ("direction",) * len(DIRECTIONS))
CONTEXT_PHRASES: tuple[str, ...] = tuple(CONTEXTS.values())  # index = World.contexts index
MEDIA = ("clip", "image")


def slot_caption(slots: dict[str, str]) -> str:
    """The captioning target from its slots: 'a red star moving left on grass.' (no direction: image)."""
    head = f"{article(slots['colour'])} {slots['object']}"
    move = f" moving {slots['direction']}" if slots.get("direction") else ""
    return f"{head}{move} {slots['context']}."


def _check_media(media: str) -> str:
    if media not in MEDIA:
        raise ValueError(f"media={media!r}; accepted: {', '.join(map(repr, MEDIA))}")
    return media


def _check_frames(frames: int) -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 2:
        raise ValueError(f"frames={frames!r}: a clip needs an integer number of frames >= 2")
    return frames


def _tokens(tokenize: Tokenize | None, texts: Sequence[str], what: str) -> torch.Tensor:
    if tokenize is None:
        raise ValueError(f"{what}: no tokenizer; pass tokenize=model.tokenize when building the set")
    return tokenize(list(texts))


@dataclass
class RetrievalSet:
    """B media (images (B,3,H,W) or clips (B,T,3,H,W)) and B captions, caption i describing item i."""

    task: str
    media: torch.Tensor
    captions: list[str]
    labels: torch.Tensor  # (B,) index into World.classes
    direction: torch.Tensor | None = None  # (B,) index into DIRECTIONS (clips)
    tokenize: Tokenize | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def key(self) -> str:
        return "clips" if self.media.ndim == 5 else "images"

    def batch(self) -> dict[str, torch.Tensor]:
        return {self.key: self.media, "text": _tokens(self.tokenize, self.captions, self.task)}


@dataclass
class CaptionSet:
    """Media with captioning targets: the slot template and the slots themselves."""

    media: torch.Tensor  # (B,T,3,H,W) clips or (B,3,H,W) images
    captions: list[str]  # slot_caption(slots[i])
    slots: list[dict[str, str]]  # {"object", "colour", "context"[, "direction"]}
    tokenize: Tokenize | None = field(default=None, repr=False)

    task = "captioning"

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def key(self) -> str:
        return "clips" if self.media.ndim == 5 else "images"

    def batch(self) -> dict[str, torch.Tensor]:
        return {self.key: self.media, "targets": _tokens(self.tokenize, self.captions, "captioning")}


@dataclass
class QASet:
    """Clips, one question each (text and kind), the answer an index into ANSWERS."""

    clips: torch.Tensor  # (B, T, 3, H, W)
    questions: list[str]
    kinds: list[str]  # one of QUESTION_KINDS per sample
    answers: torch.Tensor  # (B,) index into ANSWERS
    tokenize: Tokenize | None = field(default=None, repr=False)

    task = "qa"

    def __len__(self) -> int:
        return len(self.questions)

    def batch(self) -> dict[str, torch.Tensor]:
        return {"clips": self.clips, "text": _tokens(self.tokenize, self.questions, "qa"), "targets": self.answers}


@dataclass
class ClassificationSet:
    """Scenes and their classes (labels index World.classes; `classnames` is that tuple)."""

    images: torch.Tensor  # (B, 3, H, W)
    labels: torch.Tensor  # (B,)
    classnames: tuple[str, ...] = ALL_CLASSES
    clips: torch.Tensor | None = None  # (B, T, 3, H, W): the same objects moving (paths with temporal modules)

    task = "classification"

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, media: str = "images") -> dict[str, torch.Tensor]:
        if media == "clips" and self.clips is None:
            raise ValueError("this classification set has no clips; build it with classification(..., frames=T)")
        if media not in ("images", "clips"):
            raise ValueError(f"media={media!r}; accepted: 'images', 'clips'")
        return {media: self.images if media == "images" else self.clips, "targets": self.labels}


def image_retrieval(world: World, split: str, indices, tokenize: Tokenize | None = None) -> RetrievalSet:
    b = world.batch(split, indices)
    return RetrievalSet("image_retrieval", b.images, list(b.captions), b.labels, tokenize=tokenize)


def video_retrieval(world: World, split: str, indices, frames: int = 8,
                    tokenize: Tokenize | None = None) -> RetrievalSet:
    c = world.clips(split, indices, frames=_check_frames(frames))
    return RetrievalSet("video_retrieval", c.frames, list(c.captions), c.labels, c.direction, tokenize=tokenize)


def _slots(world: World, split: str, indices, direction: torch.Tensor | None) -> list[dict[str, str]]:
    lat = world.latents(split, indices)  # the clip's and the scene's identity, colour and context
    out = []
    for i in range(len(lat.label)):
        s = {"object": ALL_CLASSES[int(lat.label[i])], "colour": COLOR_NAMES[int(lat.color[i])],
             "context": CONTEXT_PHRASES[int(lat.context[i])]}
        if direction is not None:
            s["direction"] = DIRECTIONS[int(direction[i])]
        out.append(s)
    return out


def captioning(world: World, split: str, indices, media: str = "clip", frames: int = 8,
               tokenize: Tokenize | None = None) -> CaptionSet:
    """Captioning targets with slots; `media="clip"` adds the direction slot."""
    if _check_media(media) == "clip":
        c = world.clips(split, indices, frames=_check_frames(frames))
        data, direction = c.frames, c.direction
    else:
        data, direction = world.batch(split, indices).images, None
    slots = _slots(world, split, indices, direction)
    return CaptionSet(data, [slot_caption(s) for s in slots], slots, tokenize=tokenize)


def qa(world: World, split: str, indices, frames: int = 8, tokenize: Tokenize | None = None) -> QASet:
    """One question per clip; sample i asks QUESTION_KINDS[index % 3]."""
    c = world.clips(split, indices, frames=_check_frames(frames))
    lat = world.latents(split, indices)
    kinds, answers = [], []
    for i in range(len(c)):
        kind = QUESTION_KINDS[int(lat.index[i]) % len(QUESTION_KINDS)]
        word = {"colour": COLOR_NAMES[int(lat.color[i])], "shape": ALL_CLASSES[int(c.labels[i])],
                "direction": DIRECTIONS[int(c.direction[i])]}[kind]
        kinds.append(kind)
        answers.append(answer_index(kind, word))
    return QASet(c.frames, [QUESTIONS[k] for k in kinds], kinds, torch.tensor(answers, dtype=torch.long),
                 tokenize=tokenize)


def answer_index(kind: str, word: str) -> int:
    """The index into ANSWERS of `word` as an answer of `kind` ('colour' | 'shape' | 'direction')."""
    if kind not in QUESTION_KINDS:
        raise ValueError(f"kind={kind!r}; accepted: {', '.join(QUESTION_KINDS)}")
    for i, (a, k) in enumerate(zip(ANSWERS, ANSWER_KIND)):
        if a == word and k == kind:
            return i
    raise ValueError(f"{word!r} is not a {kind} answer; accepted: "
                     f"{', '.join(a for a, k in zip(ANSWERS, ANSWER_KIND) if k == kind)}")


def classification(world: World, split: str, indices, frames: int | None = None) -> ClassificationSet:
    """Scenes and their classes; with `frames`, also clips of the same objects (same labels)."""
    b = world.batch(split, indices)
    clips = None if frames is None else world.clips(split, indices, frames=_check_frames(frames)).frames
    return ClassificationSet(b.images, b.labels, clips=clips)


TaskSet = RetrievalSet | CaptionSet | QASet | ClassificationSet


def task_set(task: str, world: World, split: str, indices, frames: int = 8,
             tokenize: Tokenize | None = None) -> TaskSet:
    """The set of one task (a name in TASK_NAMES) over `indices` of `split`."""
    if task == "image_retrieval":
        return image_retrieval(world, split, indices, tokenize)
    if task == "video_retrieval":
        return video_retrieval(world, split, indices, frames, tokenize)
    if task == "captioning":
        return captioning(world, split, indices, "clip", frames, tokenize)
    if task == "qa":
        return qa(world, split, indices, frames, tokenize)
    if task == "classification":
        return classification(world, split, indices)
    raise ValueError(f"task={task!r}; accepted: {', '.join(TASK_NAMES)}")


def task_sets(world: World, split: str, indices, frames: int = 8, tokenize: Tokenize | None = None,
              tasks: Sequence[str] = TASK_NAMES) -> dict[str, TaskSet]:
    """Every task's set over the same `indices` (task -> set)."""
    if isinstance(tasks, str):
        raise TypeError(f"tasks={tasks!r} is one string; accepted: a sequence of task names, e.g. ({tasks!r},)")
    return {t: task_set(t, world, split, indices, frames, tokenize) for t in tasks}
