"""What every codebook picture shares: colours, checks of the usage tensor and names, the figure type.

A usage tensor is counts (codes K, modalities M, C + 1) accumulated over an evaluation pass (class
axis = the step's event class, last index = background), as
`workbench.methods.codebook.usage.code_usage` returns it.
"""
from __future__ import annotations

import io
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

MODALITY_COLORS = {"video": "#1f77b4", "audio": "#d62728", "text": "#2ca02c"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf")
BACKGROUND_COLOR = "0.78"
MATCH_COLOR, MISMATCH_COLOR = "#b7e4c7", "#f4a6a6"


def _as_usage(usage) -> np.ndarray:
    """A usage tensor/array (K, M, C + 1) of non-negative counts -> int64 numpy, or a clear error."""
    u = usage.detach().cpu().numpy() if isinstance(usage, torch.Tensor) else np.asarray(usage)
    if u.ndim != 3:
        raise ValueError(f"usage has shape {tuple(u.shape)}; expected (codes K, modalities M, classes C + 1)")
    if u.size and (not np.all(np.isfinite(u)) or u.min() < 0 or not np.all(u == np.round(u))):
        raise ValueError("usage must hold non-negative integer counts (codes x modalities x classes)")
    return u.astype(np.int64)


def _modalities(u: np.ndarray, modalities: Sequence[str] | None) -> tuple[str, ...]:
    M = u.shape[1]
    if modalities is None:
        default = tuple(MODALITY_COLORS)
        return default[:M] if M <= len(default) else tuple(f"modality {m}" for m in range(M))
    modalities = tuple(modalities)
    if len(modalities) != M:
        raise ValueError(f"{len(modalities)} modality names {modalities} for a usage tensor with {M} modalities; "
                         f"accepted: {M} names, one per modality of the usage tensor, or None")
    return modalities


def _classes(u: np.ndarray, classes: Sequence[str] | None) -> tuple[str, ...]:
    """Names of the C + 1 class slots: the C event classes then 'background'."""
    C = u.shape[2] - 1
    if classes is None:
        return tuple(f"class {c}" for c in range(C)) + ("background",)
    if isinstance(classes, str):
        raise TypeError(f"classes={classes!r} is one string; accepted: the {C} event class names")
    classes = tuple(classes)
    if len(classes) != C:
        raise ValueError(f"{len(classes)} class names for a usage tensor with {C} event classes "
                         f"(+ background): pass the C event class names, without 'background'")
    return classes + ("background",)


def _codes_numpy(codes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """modality -> code indices (tensor or array) -> modality -> int64 numpy."""
    return {m: np.asarray(torch.as_tensor(c).cpu()).astype(np.int64) for m, c in codes.items()}


def _modality_color(name: str, m: int) -> str:
    return MODALITY_COLORS.get(name, OTHER_COLORS[m % len(OTHER_COLORS)])


def _class_colors(n_classes: int) -> list:
    """Colours of C event classes (categorical) + background (grey)."""
    cmap = colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(c % cmap.N) for c in range(n_classes)] + [BACKGROUND_COLOR]


class NotebookFigure(Figure):
    """A pyplot-free Figure that a notebook shows as a PNG even where pyplot was never imported
    (then no inline backend registers a display for figures): nothing leaks into pyplot's list of
    open figures, and a cell ending with one shows it once. Constrained layout unless `layout`
    says otherwise (None: the caller places its axes by hand)."""

    def __init__(self, figsize: tuple[float, float], layout: str | None = "constrained"):
        super().__init__(figsize=figsize, layout=layout)

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()


def _png(fig: Figure, dpi: int = 80) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _wrap(s: str, width: int) -> str:
    return "\n".join(textwrap.wrap(s, width, break_long_words=False)) or s


def _inches(fig: Figure, left: float, bottom: float, width: float, height: float) -> dict:
    """gridspec bounds from inches measured from the figure's bottom-left corner."""
    W, H = fig.get_size_inches()
    return dict(left=left / W, right=(left + width) / W, bottom=bottom / H, top=(bottom + height) / H)
