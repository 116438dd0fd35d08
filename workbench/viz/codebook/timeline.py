"""One sequence's codes in every modality, step by step, with cross-modal mismatches marked."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .base import MATCH_COLOR, MISMATCH_COLOR, NotebookFigure, _class_colors, _wrap


def _timeline_arrays(codes: Mapping[str, Any], step_labels, modalities: Sequence[str] | None):
    """-> names, (M, T) int codes, (T,) int labels; checks that every row has T steps."""
    if not codes:
        raise ValueError("codes is empty: pass {modality: code indices (T,)}")
    names = tuple(modalities) if modalities is not None else tuple(codes)
    missing = [m for m in names if m not in codes]
    if missing:
        raise ValueError(f"no codes for modality {missing}; codes has {list(codes)}")
    arrays = {m: np.asarray(torch.as_tensor(codes[m]).cpu()) for m in names}
    arrays["step_labels"] = np.asarray(torch.as_tensor(step_labels).cpu())
    for what, a in arrays.items():  # one sequence: (T,) ((1, T) is taken as it); (N, T) would run N sequences together
        if a.ndim == 0 or any(d != 1 for d in a.shape[:-1]):
            name = "step_labels" if what == "step_labels" else f"codes[{what!r}]"
            raise ValueError(f"{name} has shape {a.shape}; accepted: one sequence, (T,) (take codes[m][i] for "
                             "sequence i)")
    rows = np.stack([arrays[m].reshape(-1) for m in names])
    labels = arrays["step_labels"].reshape(-1)
    if rows.shape[1] != len(labels):
        raise ValueError(f"code rows have {rows.shape[1]} steps but step_labels has {len(labels)}")
    return names, rows.astype(np.int64), labels.astype(np.int64)


def _shared_with_other(rows: np.ndarray) -> np.ndarray:
    """(M, T) codes -> (M, T) bool: the modality's code at that step equals another modality's."""
    same = rows[:, None, :] == rows[None, :, :]  # (M, M, T)
    return same.sum(1) > 1


def draw_timeline(ax, codes: Mapping[str, Any], step_labels, classes: Sequence[str],
                  modalities: Sequence[str] | None = None, title: str | None = None) -> None:
    """Draw one sequence's codes on `ax`: top row = the step's event class, then one row per
    modality with the code index in each cell; green = another modality has the same code at that
    step, red = no other modality does (a cross-modal mismatch)."""
    names, rows, labels = _timeline_arrays(codes, step_labels, modalities)
    classes = tuple(classes) + ("background",)
    if labels.min() < 0 or labels.max() >= len(classes):
        raise ValueError(f"step_labels in [{labels.min()}, {labels.max()}]; accepted 0..{len(classes) - 1} "
                         f"({len(classes) - 1} classes, {len(classes) - 1} = background)")
    M, T = rows.shape
    ccol = _class_colors(len(classes) - 1)
    shared = _shared_with_other(rows)
    for t in range(T):
        ax.add_patch(Rectangle((t, 0), 1, 1, facecolor=ccol[labels[t]], edgecolor="white"))
        ax.text(t + 0.5, 0.5, _wrap(classes[labels[t]], 10), ha="center", va="center", fontsize=6)
        for m in range(M):
            ax.add_patch(Rectangle((t, m + 1), 1, 1, facecolor=MATCH_COLOR if shared[m, t] else MISMATCH_COLOR,
                                   edgecolor="white", lw=1.5))
            ax.text(t + 0.5, m + 1.5, str(rows[m, t]), ha="center", va="center", fontsize=8)
    agree = (rows == rows[:1]).all(0)
    for t in np.flatnonzero(~agree):
        ax.add_patch(Rectangle((t + 0.04, 1.04), 0.92, M - 0.08, fill=False, edgecolor="#c00000", lw=1.2))
    ax.set_xlim(0, T)
    ax.set_ylim(M + 1, 0)
    ax.set_yticks(np.arange(M + 1) + 0.5, ["event"] + list(names), fontsize=8)
    ax.set_xticks(np.arange(T) + 0.5, [str(t) for t in range(T)], fontsize=7)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    head = f"{title}: " if title else ""
    ax.set_title(f"{head}all {M} modalities share one code in {int(agree.sum())} of {T} steps", fontsize=9)
    ax.legend(handles=[Patch(color=MATCH_COLOR, label="same code as another modality"),
                       Patch(color=MISMATCH_COLOR, label="no other modality has this code"),
                       Patch(facecolor="none", edgecolor="#c00000", label="step where modalities differ")],
              fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def code_timeline(codes: Mapping[str, Any], step_labels, classes: Sequence[str],
                  modalities: Sequence[str] | None = None, title: str | None = None) -> Figure:
    """The code index of each step of one sequence in each modality (`codes`: modality -> (T,)),
    under the step's event class (`step_labels` (T,) in [0, C], C = background); mismatches marked."""
    names, rows, _ = _timeline_arrays(codes, step_labels, modalities)
    M, T = rows.shape
    fig = NotebookFigure(figsize=(0.62 * T + 3.4, 0.42 * (M + 1) + 1.1))
    draw_timeline(fig.add_subplot(), {m: rows[i] for i, m in enumerate(names)}, step_labels, classes, names,
                  title)
    return fig

