"""Module selection: each task names its default path of modules and the alternatives a
module-selection table compares; `check_path` turns a bad task, module or path into a ValueError
that lists what is accepted.

A path is a tuple of module names in data-flow order:
    vision     the vision encoder shared by images and frames
    temporal   its local temporal modules (clips with T >= 2); without it a clip is a frame mean
    universal  the universal layers (vision through latent queries; text always runs the text tower)
    text       the text encoder
    fusion     text self-attention + cross-attention to vision
    decoder    the causal text decoder (cross-attending to vision, or to the fused streams)
"""
from __future__ import annotations

from itertools import product
from typing import NamedTuple, Sequence

MODULES: tuple[str, ...] = ("vision", "temporal", "universal", "text", "fusion", "decoder")
HEADS: tuple[str, ...] = ("contrastive", "classifier", "qa", "lm")  # lm: the decoder's tied output layer


class TaskSpec(NamedTuple):
    name: str
    path: tuple[str, ...]  # the default path
    head: str
    inputs: tuple[str, ...]  # batch keys; "images|clips" = either; targets are optional (loss when given)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("image_retrieval", ("vision", "universal", "text"), "contrastive", ("images", "text")),
    TaskSpec("video_retrieval", ("vision", "temporal", "universal", "text"), "contrastive", ("clips", "text")),
    TaskSpec("captioning", ("vision", "temporal", "universal", "decoder"), "lm", ("images|clips", "targets")),
    TaskSpec("qa", ("vision", "temporal", "universal", "text", "fusion", "decoder"), "qa", ("images|clips", "text")),
    TaskSpec("classification", ("vision",), "classifier", ("images|clips",)),
)}


def _vision(temporal: bool, universal: bool) -> tuple[str, ...]:
    return ("vision",) + (("temporal",) if temporal else ()) + (("universal",) if universal else ())


def _paths(task: str) -> list[tuple[str, ...]]:
    both = (True, False)
    if task == "image_retrieval":
        return [_vision(False, u) + ("text",) for u in both]
    if task == "video_retrieval":
        return [_vision(t, u) + ("text",) for t, u in product(both, both)]
    if task == "captioning":
        return ([_vision(t, u) + ("decoder",) for t, u in product(both, both)]
                + [_vision(t, u) + ("text", "fusion", "decoder") for t, u in product(both, both)])
    if task == "qa":
        return [_vision(t, u) + ("text", "fusion") + (("decoder",) if d else ())
                for t, u, d in product(both, both, both)]
    return [_vision(t, u) for t, u in product((False, True), both)]  # classification


def check_task(task: str) -> TaskSpec:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(map(repr, TASKS))}")
    return TASKS[task]


def valid_paths(task: str) -> list[tuple[str, ...]]:
    """The task's default path first, then the alternatives."""
    spec = check_task(task)
    return [spec.path] + [p for p in _paths(task) if p != spec.path]


def check_path(task: str, path: Sequence[str] | None) -> tuple[str, ...]:
    """`path` as a tuple (None: the task's default); ValueError naming the bad module or listing the valid paths."""
    spec = check_task(task)
    if path is None:
        return spec.path
    if isinstance(path, str) or not all(isinstance(m, str) for m in path):
        raise ValueError(f"path={path!r}; accepted: a tuple of module names, e.g. {spec.path!r}")
    path = tuple(path)
    bad = [m for m in path if m not in MODULES]
    if bad:
        raise ValueError(f"unknown module {bad[0]!r} in path {path!r}; accepted modules: {', '.join(MODULES)}")
    valid = valid_paths(task)
    if path not in valid:
        listing = "; ".join(" -> ".join(p) for p in valid)
        raise ValueError(f"path {' -> '.join(path) or '()'} does not connect for task {task!r}; valid paths: {listing}")
    return path
