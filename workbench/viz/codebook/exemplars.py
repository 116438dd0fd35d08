"""What a code stands for: the inputs (frames, waveforms, captions) of steps assigned to it.

`draw_exemplars` is the one exemplar drawer: a row of up to k steps of one modality on ONE axes
laid out in inches (cheap to redraw: one axes per modality, not per step). `exemplar_rows` stacks
such rows in a figure; `code_exemplars` and the explorer's code panel both use it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .base import MODALITY_COLORS, NotebookFigure, _modality_color, _wrap

TITLE_H = 0.22  # inches above each exemplar for its title line
CHARS_PER_INCH = 14  # of a fontsize-7 caption, for wrapping it into its slot


def exemplar_kind(data) -> str:
    """'frames' (N, T, 3|1, H, W), 'waveforms' (N, T, L) or 'captions' (N lists of T strings)."""
    if isinstance(data, torch.Tensor) or isinstance(data, np.ndarray):
        if data.ndim == 5 and data.shape[2] in (1, 3):
            return "frames"
        if data.ndim == 3:
            return "waveforms"
        raise ValueError(f"exemplar tensor of shape {tuple(data.shape)}; accepted: frames (N, T, 3, H, W) "
                         "or waveforms (N, T, L)")
    if isinstance(data, Sequence) and all(isinstance(r, Sequence) and all(isinstance(s, str) for s in r)
                                          for r in data):
        return "captions"
    raise ValueError(f"exemplars of type {type(data).__name__}; accepted: frames (N, T, 3, H, W), "
                     "waveforms (N, T, L) or captions (N lists of T strings)")


def exemplar_steps(codes, code: int, k: int) -> list[tuple[int, int]]:
    """Up to k (sequence, step) places where `codes` (N, T) equals `code`: distinct sequences first."""
    c = np.asarray(torch.as_tensor(codes).cpu())
    hits = [tuple(map(int, h)) for h in np.argwhere(c == code)]
    first, rest, seen = [], [], set()
    for n, t in hits:
        (rest if n in seen else first).append((n, t))
        seen.add(n)
    return (first + rest)[:k]


def draw_exemplars(ax, code: int, codes, data, modality: str, k: int, size: tuple[float, float]) -> None:
    """Up to k steps of one modality assigned to `code`, side by side on ONE axes of `size` (width,
    height) inches, each under its title 'seq n, step t': a frame, a waveform (no ticks: its shape is
    the point) or a caption. The first title names the modality, in its colour (and, for waveforms,
    their length in samples). `codes` (N, T) are the modality's code indices, `data` its frames
    (N, T, 3|1, H, W) in [0, 1] / waveforms (N, T, L) / captions (N lists of T strings) aligned with
    `codes`, or None: then a note says no exemplars were given."""
    w, h = size
    ax.set_xlim(0, w)
    ax.set_ylim(0, h)
    ax.set_axis_off()
    kind = exemplar_kind(data) if data is not None else None
    places = exemplar_steps(codes, code, k)
    if data is None or not places:
        note = f"{modality}: no exemplars given" if data is None else f"{modality}: no step uses code {code}"
        ax.text(0.05, h / 2, note, fontsize=8, color="0.4", va="center")
        return
    slot, body = w / k, h - TITLE_H  # inches per exemplar; a title line above each
    color = _modality_color(modality, 0)
    for i, (n, t) in enumerate(places):
        x0 = i * slot + 0.06
        inner = slot - 0.12
        title = f"seq {n}, step {t}"
        if i == 0:
            title = f"{modality}: {title}" + (f", {len(data[n, t])} samples" if kind == "waveforms" else "")
        ax.text(x0 + inner / 2, h, title, fontsize=7, ha="center", va="top", color=color if i == 0 else "k")
        if kind == "frames":
            img = torch.as_tensor(data[n, t]).detach().float().cpu().permute(1, 2, 0).numpy().clip(0, 1).squeeze()
            side = min(inner, body)
            left = x0 + (inner - side) / 2
            ax.imshow(img, extent=(left, left + side, 0, side), cmap="gray", interpolation="nearest")
        elif kind == "waveforms":
            wave = np.asarray(torch.as_tensor(data[n, t]).detach().float().cpu())
            scale = np.abs(wave).max() or 1.0
            ax.plot(x0 + np.linspace(0, inner, len(wave)), body / 2 + 0.45 * body * wave / scale, lw=0.5,
                    color=MODALITY_COLORS["audio"])
            ax.add_patch(Rectangle((x0, 0), inner, body, fill=False, edgecolor="0.8", lw=0.6, clip_on=False))
        else:
            ax.text(x0 + inner / 2, body / 2, _wrap(f"\u201c{data[n][t]}\u201d", max(int(inner * CHARS_PER_INCH), 12)),
                    fontsize=7, ha="center", va="center")
            ax.add_patch(Rectangle((x0, 0), inner, body, fill=False, edgecolor="0.85", lw=0.6, clip_on=False))
    ax.set_aspect("auto")


def exemplar_rows(fig: Figure, code: int, codes: Mapping[str, Any], exemplars: Mapping[str, Any],
                  modalities: Sequence[str], k: int, row_h: float) -> None:
    """One `draw_exemplars` row per modality (top to bottom in `modalities` order), stacked from the
    figure's bottom edge, each `row_h` inches tall and as wide as the figure less 0.3 inch margins."""
    W, H = fig.get_size_inches()
    for r, m in enumerate(modalities):
        box = (0.3, row_h * (len(modalities) - 1 - r) + 0.1, W - 0.6, row_h - 0.15)  # inches
        ax = fig.add_axes((box[0] / W, box[1] / H, box[2] / W, box[3] / H))
        draw_exemplars(ax, code, codes[m], exemplars.get(m), m, k, box[2:])


def code_exemplars(code: int, codes: Mapping[str, Any], exemplars: Mapping[str, Any], k: int = 4,
                   modalities: Sequence[str] | None = None) -> Figure:
    """What a code stands for: rows = modalities (one axes each), up to k steps assigned to `code` per row.

    `codes`: modality -> indices (N, T); `exemplars`: modality -> the inputs of the same N sequences:
    frames (N, T, 3, H, W) in [0, 1], waveforms (N, T, L), or captions (N lists of T strings).
    """
    if k < 1:
        raise ValueError(f"k={k!r}: show at least one exemplar")
    names = tuple(modalities) if modalities is not None else tuple(codes)
    missing = [m for m in names if m not in codes]
    if missing:
        raise ValueError(f"no codes for modality {missing}; codes has {list(codes)}")
    for m in names:
        if exemplars.get(m) is not None and len(exemplars[m]) != len(codes[m]):
            raise ValueError(f"{len(exemplars[m])} {m} exemplars for codes of {len(codes[m])} sequences: "
                             "the exemplars are the inputs of the sequences whose codes are given")
    row_h, head = 1.65, 0.5  # inches: a row of exemplars, the heading above the rows
    H = row_h * len(names) + head
    fig = NotebookFigure(figsize=(1.75 * k + 0.6, H), layout=None)  # laid out by hand, like the explorer
    exemplar_rows(fig, code, codes, exemplars, names, k, row_h)
    fig.suptitle(f"steps assigned to code {code}, per modality", fontsize=10, y=1 - head / 2 / H, va="center")
    return fig
