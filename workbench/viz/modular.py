"""The modular model's module graph with a task's path lit (study 04): matplotlib, no pyplot.

    fig = path_figure("captioning")                                   # the task's default path
    fig = path_figure("qa", path=("vision", "text", "fusion"))        # another valid path
    fig = path_figure(("vision", "temporal", "universal", "text"))    # a bare path: the first task it fits

Every module of `workbench.methods.modular` is a box; the arrows are the ways data can flow between
them; the path's modules, arrows and head are drawn in colour, the rest in grey. The dashed line
between text and universal says the universal layers are the text encoder's own top layers.
"""
from __future__ import annotations

from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from workbench.methods.modular import TASKS, check_path, check_task, valid_paths

NODES: dict[str, tuple[float, float, str]] = {  # name -> (x, y, label)
    "media": (0.0, 2.0, "images /\nclips"), "text_in": (0.0, 0.0, "text\ntokens"),
    "vision": (1.5, 2.0, "vision\nencoder"), "temporal": (1.5, 3.2, "temporal\nmodules"),
    "text": (1.5, 0.0, "text\nencoder"), "universal": (3.0, 1.0, "universal\nlayers"),
    "fusion": (4.5, 0.4, "fusion"), "decoder": (6.0, 1.0, "decoder"),
    "contrastive": (7.6, 3.2, "contrastive\nhead"), "classifier": (7.6, 2.2, "classifier\nhead"),
    "qa": (7.6, 1.0, "QA head"), "lm": (7.6, -0.2, "LM head\n(captions)"),
}
EDGES: tuple[tuple[str, str], ...] = (
    ("media", "vision"), ("vision", "temporal"), ("vision", "universal"), ("text_in", "text"),
    ("vision", "fusion"), ("universal", "fusion"), ("text", "fusion"), ("vision", "decoder"),
    ("universal", "decoder"), ("fusion", "decoder"), ("vision", "contrastive"), ("universal", "contrastive"),
    ("text", "contrastive"), ("vision", "classifier"), ("universal", "classifier"), ("fusion", "qa"),
    ("decoder", "qa"), ("decoder", "lm"),
)
LIT, DIM = "C0", "0.8"


def _task_of(path: tuple[str, ...]) -> str:
    for task in TASKS:
        if path in valid_paths(task):
            return task
    raise ValueError(f"path {' -> '.join(path)} is a valid path of no task; valid paths: "
                     + "; ".join(f"{t}: " + ", ".join(" -> ".join(p) for p in valid_paths(t)) for t in TASKS))


def lit_graph(task: str, path: Sequence[str] | None = None) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes and edges of the module graph that `task` along `path` (None: its default) uses."""
    path = check_path(task, path)
    head = check_task(task).head
    nodes, edges = {"media", *path, head}, {("media", "vision")}
    end = "universal" if "universal" in path else "vision"
    if "temporal" in path:
        edges.add(("vision", "temporal"))
    if "universal" in path:
        edges.add(("vision", "universal"))
    if "text" in path:
        nodes.add("text_in")
        edges.add(("text_in", "text"))
    if "fusion" in path:
        edges |= {(end, "fusion"), ("text", "fusion")}
    if "decoder" in path:
        edges.add(("fusion" if "fusion" in path else end, "decoder"))
    edges |= {"contrastive": {(end, "contrastive"), ("text", "contrastive")}, "classifier": {(end, "classifier")},
              "qa": {("decoder" if "decoder" in path else "fusion", "qa")}, "lm": {("decoder", "lm")}}[head]
    return nodes, edges


def path_figure(task_or_path: str | Sequence[str], path: Sequence[str] | None = None, task: str | None = None,
                ax: Axes | None = None, title: str | None = None) -> Figure:
    """The module graph with the path lit: a task name (its default path, or `path`), or a bare path
    (drawn for `task`, else the first task it is valid for)."""
    if isinstance(task_or_path, str):
        task = task_or_path
    else:
        path = tuple(task_or_path)
        task = task or _task_of(path)
    nodes, edges = lit_graph(task, path)
    path = check_path(task, path)
    if ax is None:
        fig = Figure(figsize=(9, 3.6))
        ax = fig.add_subplot(1, 1, 1)
    fig = ax.figure
    for a, b in EDGES:
        _arrow(ax, a, b, (a, b) in edges)
    _shared_weights(ax, "text" in nodes or "universal" in nodes)
    for name in NODES:
        _box(ax, name, name in nodes)
    ax.set_xlim(-0.7, 8.4)
    ax.set_ylim(-0.8, 3.8)
    ax.set_axis_off()
    ax.set_title(title or f"{task}: {' -> '.join(path)} -> {check_task(task).head}", fontsize=10)
    return fig


def _box(ax: Axes, name: str, lit: bool) -> None:
    x, y, label = NODES[name]
    ax.add_patch(FancyBboxPatch((x - 0.55, y - 0.3), 1.1, 0.6, boxstyle="round,pad=0.05",
                                facecolor=LIT if lit else "white", edgecolor=LIT if lit else DIM, lw=1.5, zorder=2))
    ax.text(x, y, label, ha="center", va="center", fontsize=8, color="white" if lit else "0.55", zorder=3)


def _arrow(ax: Axes, a: str, b: str, lit: bool) -> None:
    (xa, ya, _), (xb, yb, _) = NODES[a], NODES[b]
    ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), arrowstyle="-|>", mutation_scale=12, shrinkA=22, shrinkB=22,
                                 color=LIT if lit else DIM, lw=2.0 if lit else 1.0, zorder=1 if not lit else 1.5))


def _shared_weights(ax: Axes, lit: bool) -> None:
    (xa, ya, _), (xb, yb, _) = NODES["text"], NODES["universal"]
    ax.plot([xa + 0.55, xb - 0.3], [ya + 0.2, yb - 0.3], ls="--", color="C1" if lit else DIM, lw=1.2, zorder=1)
    ax.text((xa + xb) / 2 + 0.45, (ya + yb) / 2 - 0.2, "top k text layers\n= universal (shared)", fontsize=6.5,
            color="C1" if lit else DIM, ha="left")
