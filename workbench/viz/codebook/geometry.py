"""The geometry of the code vectors: a 2-D map (t-SNE or UMAP) sized by use, coloured by class or modality."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .base import NotebookFigure, _as_usage, _class_colors, _classes, _modalities, _modality_color

EMBEDDINGS = ("tsne", "umap")
COLOR_BY = ("class", "modality")


def embed_codes(vectors, method: str = "tsne", seed: int = 0, threads: int | None = 1) -> np.ndarray:
    """Code vectors (K, D) -> (K, 2) with scikit-learn's t-SNE (PCA init) or UMAP (if installed).

    threads: OpenMP/BLAS threads for the fit (None: the library's default). One by default: a
    codebook of <= 1024 codes embeds in seconds on one thread, while the default thread pool
    spinning on a busy 2-core machine took 36 s instead of 1 s for 12 codes (measured).
    """
    if method not in EMBEDDINGS:
        raise ValueError(f"method={method!r}; accepted: {', '.join(EMBEDDINGS)}")
    x = vectors.detach().cpu().float().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors, float)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"code vectors of shape {tuple(x.shape)}; expected (codes K >= 4, dim D)")
    from threadpoolctl import threadpool_limits

    if method == "umap":
        try:
            import umap
        except ImportError as e:
            raise ValueError("method='umap' needs the umap-learn package (not installed); use 'tsne'") from e
        with threadpool_limits(threads):
            return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, (len(x) - 1) / 3))
    with threadpool_limits(threads):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def _modality_blend(per_code: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(K, M) counts -> (K, 3) RGB: the modalities' colours mixed by each code's share of use."""
    share = per_code / np.maximum(per_code.sum(1, keepdims=True), 1)
    base = np.array([to_rgb(_modality_color(n, m)) for m, n in enumerate(names)])  # (M, 3)
    return share @ base


def code_map(vectors, usage, classes: Sequence[str] | None = None, modalities: Sequence[str] | None = None,
             color_by: str = "class", method: str = "tsne", seed: int = 0, xy: np.ndarray | None = None,
             ) -> Figure:
    """A 2-D map of the code vectors (K, D): one dot per code, area proportional to its use, coloured
    by its dominant class or by the modalities' shares of its use (`color_by`); unused codes are grey
    crosses. `xy` (K, 2) reuses an embedding from `embed_codes`."""
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by={color_by!r}; accepted: {', '.join(COLOR_BY)}")
    u = _as_usage(usage)
    if len(vectors) != u.shape[0]:
        raise ValueError(f"{len(vectors)} code vectors for a usage tensor of {u.shape[0]} codes (vectors of shape "
                         f"{tuple(np.shape(vectors))}); accepted: one vector per code, (K={u.shape[0]}, D)")
    names, cls = _modalities(u, modalities), _classes(u, classes)
    xy = embed_codes(vectors, method, seed) if xy is None else np.asarray(xy)
    per_code = u.sum(2)  # (K, M)
    total = per_code.sum(1)
    used = total > 0
    size = 6 + 240 * np.sqrt(total / max(total.max(), 1))
    fig = NotebookFigure(figsize=(7.4, 5.6))
    ax = fig.add_subplot()
    ax.scatter(xy[~used, 0], xy[~used, 1], marker="x", s=10, color="0.7", linewidths=0.8)
    if color_by == "class":
        colors = np.array(_class_colors(len(cls) - 1), dtype=object)[u.sum(1).argmax(1)]
        handles = [Patch(color=_class_colors(len(cls) - 1)[c], label=cls[c])
                   for c in sorted(set(u.sum(1).argmax(1)[used].tolist()))]
        legend_title = "dominant class"
    else:
        colors = _modality_blend(per_code, names)
        handles = [Patch(color=_modality_color(n, m), label=f"only {n}") for m, n in enumerate(names)]
        handles.append(Patch(color=_modality_blend(np.ones((1, len(names))), names)[0],
                             label="all equally"))
        legend_title = "colour = mix of modalities by share"
    ax.scatter(xy[used, 0], xy[used, 1], s=size[used], c=list(colors[used]), alpha=0.8, edgecolors="k",
               linewidths=0.3)
    handles.append(ax.scatter([], [], marker="x", s=10, color="0.7", label="unused code"))
    for n in (1, 10, 100, 1000):
        if n <= total.max():
            handles.append(ax.scatter([], [], s=6 + 240 * np.sqrt(n / total.max()), color="0.6",
                                      label=f"{n} steps"))
    ax.legend(handles=handles, fontsize=7, title=legend_title, title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False, labelspacing=1.0)
    label = "t-SNE" if method == "tsne" else "UMAP"
    ax.set_xlabel(f"{label} 1 (arbitrary units)", fontsize=8)
    ax.set_ylabel(f"{label} 2 (arbitrary units)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{len(xy)} code vectors ({int(used.sum())} used), {label}; dot area = steps assigned",
                 fontsize=9)
    return fig

