"""Pictures of a discrete codebook shared by modalities (study 3), and an interactive explorer.

Everything starts from one usage tensor: counts (codes K, modalities M, C + 1) accumulated over an
evaluation pass (class axis = the step's event class, last index = background), as
`workbench.methods.codebook.usage.code_usage` returns it, plus the code indices of a few sequences.

    fig = usage_histograms(usage, modalities)                 # per modality, codes sorted by total use
    fig = codebook_over_training(checkpoint_usages, steps)    # perplexity, dead codes, shared codes
    fig = purity_figure(usage, classes)                       # class entropy per code
    fig = code_timeline(codes_of_one_sequence, step_labels, classes)   # mismatches marked
    fig = code_map(code_vectors, usage, classes)              # t-SNE (or UMAP) sized by usage
    fig = code_exemplars(code, codes, exemplars)              # frames, waveforms, captions of a code
    codebook_explorer(CodebookView(...))                      # ipywidgets: checkpoint, code, sequence

Figures are pyplot-free `matplotlib.figure.Figure`s (`NotebookFigure`: nothing leaks into a
notebook's output; a cell ending with one shows it as a PNG, `save_figure` saves it). Nothing
here trains or quantises: the caller passes plain tensors and lists, so the pictures do not
depend on how the model is built.
"""
from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .explorer import Explorer

MODALITY_COLORS = {"video": "#1f77b4", "audio": "#d62728", "text": "#2ca02c"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf")
BACKGROUND_COLOR = "0.78"
MATCH_COLOR, MISMATCH_COLOR = "#b7e4c7", "#f4a6a6"
EMBEDDINGS = ("tsne", "umap")
COLOR_BY = ("class", "modality")


# --------------------------------------------------------------------------- input checks


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
        raise ValueError(f"{len(modalities)} modality names {modalities} for a usage tensor with {M} modalities")
    return modalities


def _classes(u: np.ndarray, classes: Sequence[str] | None) -> tuple[str, ...]:
    """Names of the C + 1 class slots: the C event classes then 'background'."""
    C = u.shape[2] - 1
    if classes is None:
        return tuple(f"class {c}" for c in range(C)) + ("background",)
    classes = tuple(classes)
    if len(classes) != C:
        raise ValueError(f"{len(classes)} class names for a usage tensor with {C} event classes "
                         f"(+ background): pass the C event class names, without 'background'")
    return classes + ("background",)


def _modality_color(name: str, m: int) -> str:
    return MODALITY_COLORS.get(name, OTHER_COLORS[m % len(OTHER_COLORS)])


def _class_colors(n_classes: int) -> list:
    """Colours of C event classes (categorical) + background (grey)."""
    cmap = colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(c % cmap.N) for c in range(n_classes)] + [BACKGROUND_COLOR]


class NotebookFigure(Figure):
    """A pyplot-free Figure (constrained layout) that a notebook shows as a PNG even where pyplot
    was never imported (then no inline backend registers a display for figures): nothing leaks into
    pyplot's list of open figures, and a cell ending with one shows it once."""

    def __init__(self, figsize: tuple[float, float]):
        super().__init__(figsize=figsize, layout="constrained")

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


# --------------------------------------------------------------------------- numbers shown


@dataclass(frozen=True)
class CodebookStats:
    """What the figures print about one usage tensor, computed by `workbench.methods.codebook.usage`.

    perplexity (M,): exp(entropy of each modality's code histogram) (1 = one code, K = uniform);
    dead (M,): codes a modality never used; used: codes any modality used; shared_two / shared_all:
    of the used codes, the fraction used by at least two / by all modalities; purity (K,): class
    entropy (nats) of the steps on each code, all modalities pooled, NaN for unused codes.
    """
    perplexity: np.ndarray
    dead: np.ndarray
    used: int
    shared_two: float
    shared_all: float
    purity: np.ndarray


def codebook_stats(usage) -> CodebookStats:
    """Perplexity, dead codes, shared fractions and purity of a usage tensor (K, M, C + 1)."""
    from workbench.methods.codebook import usage as stats

    t = torch.as_tensor(_as_usage(usage))
    K, M, _ = t.shape
    shared = stats.shared_fraction(t)
    return CodebookStats(perplexity=stats.perplexity(t).numpy(),
                         dead=np.array([stats.dead_codes(t[:, m:m + 1]) for m in range(M)]),
                         used=K - stats.dead_codes(t), shared_two=shared.two, shared_all=shared.all,
                         purity=stats.purity(t).numpy())


@dataclass(frozen=True)
class UsageSeries:
    """Codebook statistics at each training checkpoint: steps (S,), perplexity and dead (S, M),
    shared_two and shared_all (S,) fractions of used codes, codes K (for the dead-code axis)."""
    steps: np.ndarray
    perplexity: np.ndarray
    dead: np.ndarray
    shared_two: np.ndarray
    shared_all: np.ndarray
    codes: int | None = None


SERIES_KEYS = ("step", "perplexity", "dead", "shared_two", "shared_all")


def usage_series(history, steps: Sequence[int] | None = None) -> UsageSeries:
    """A `UsageSeries` from a list of per-checkpoint usage tensors (each (K, M, C + 1), `steps` gives
    their training steps, default 0..S-1), or from a dict of series with keys 'step' (S,),
    'perplexity' and 'dead' ((S, M), or {modality: S values}), 'shared_two' and 'shared_all' (S,),
    and optionally 'codes' (K)."""
    if isinstance(history, UsageSeries):
        return history
    if isinstance(history, Mapping):
        missing = [k for k in SERIES_KEYS if k not in history]
        if missing:
            raise ValueError(f"history dict lacks {missing}; expected keys {SERIES_KEYS}")
        lengths = {k: len(history[k]) for k in SERIES_KEYS}
        if len(set(lengths.values())) != 1:
            raise ValueError("history series have different lengths: " + ", ".join(
                f"{k}={n}" for k, n in lengths.items()))
        S = lengths["step"]

        def per_modality(v) -> np.ndarray:  # (S, M) array, or {modality: S values} in modality order
            v = np.stack([np.asarray(x, float) for x in v.values()], 1) if isinstance(v, Mapping) else v
            return np.asarray(v, float).reshape(S, -1)

        return UsageSeries(np.asarray(history["step"]), per_modality(history["perplexity"]),
                           per_modality(history["dead"]),
                           np.asarray(history["shared_two"], float), np.asarray(history["shared_all"], float),
                           history.get("codes"))
    history = list(history)
    if not history:
        raise ValueError("history is empty: pass one usage tensor (K, M, C + 1) per checkpoint")
    steps = list(range(len(history))) if steps is None else list(steps)
    if len(steps) != len(history):
        raise ValueError(f"{len(steps)} steps for {len(history)} checkpoints")
    stats = [codebook_stats(u) for u in history]
    shapes = {_as_usage(u).shape for u in history}
    if len(shapes) != 1:
        raise ValueError(f"checkpoint usage tensors differ in shape: {sorted(shapes)}")
    return UsageSeries(np.asarray(steps), np.stack([s.perplexity for s in stats]),
                       np.stack([s.dead for s in stats]), np.array([s.shared_two for s in stats]),
                       np.array([s.shared_all for s in stats]), shapes.pop()[0])


# --------------------------------------------------------------------------- figures


def usage_histograms(usage, modalities: Sequence[str] | None = None, log: bool = True) -> Figure:
    """One panel per modality: steps assigned to each code (log scale), codes sorted by their total
    use over all modalities (the same order in every panel, so shared codes line up)."""
    u = _as_usage(usage)
    names = _modalities(u, modalities)
    per_code = u.sum(2)  # (K, M)
    order = np.argsort(-per_code.sum(1), kind="stable")
    stats = codebook_stats(u)
    K, M = per_code.shape
    fig = NotebookFigure(figsize=(3.3 * M + 0.6, 3.0))
    axes = fig.subplots(1, M, sharey=True, squeeze=False)[0]
    for m, ax in enumerate(axes):
        counts = per_code[order, m]
        floor = 0.5 if log else 0.0  # an unused code is a bar of no height on the log axis
        # one filled step patch, not K bars: 10x cheaper to draw for 400 codes
        ax.stairs(np.maximum(counts, floor), np.arange(K + 1) - 0.5, baseline=floor, fill=True,
                  color=_modality_color(names[m], m))
        if log:
            ax.set_yscale("log")
            ax.set_ylim(floor, max(per_code.max(), 1) * 1.5)
        ax.set_xlim(-0.5, K - 0.5)
        ax.set_xlabel("code rank (by total use, all modalities)", fontsize=8)
        ax.set_title(f"{names[m]}: perplexity {stats.perplexity[m]:.1f}\n{K - stats.dead[m]} of {K} codes used",
                     fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("steps assigned" + (" (log)" if log else ""), fontsize=8)
    fig.suptitle(f"code usage per modality over {int(u.sum())} steps", fontsize=10)
    return fig


def codebook_over_training(history, steps: Sequence[int] | None = None,
                           modalities: Sequence[str] | None = None, train_history=None) -> Figure:
    """Perplexity and dead codes per modality, and the fraction of used codes shared by two / by all
    modalities, against the training step (`history`: see `usage_series`). `train_history` (a
    `workbench.methods.codebook.TrainHistory`: .steps and .perplexity {modality: per-step values})
    adds the per-batch perplexity seen during training as thin lines (lower than over a whole pass:
    one batch holds fewer steps than there are codes)."""
    s = usage_series(history, steps)
    M = s.perplexity.shape[1]
    names = tuple(modalities) if modalities is not None else _modalities(np.zeros((1, M, 1)), None)
    if len(names) != M:
        raise ValueError(f"{len(names)} modality names for series of {M} modalities")
    fig = NotebookFigure(figsize=(11.0, 3.0))
    ax_p, ax_d, ax_s = fig.subplots(1, 3)
    for m, name in enumerate(names):
        kw = dict(color=_modality_color(name, m), marker="o", ms=3, label=name)
        ax_p.plot(s.steps, s.perplexity[:, m], **kw)
        ax_d.plot(s.steps, s.dead[:, m], **kw)
        batch = getattr(train_history, "perplexity", {}).get(name) if train_history is not None else None
        if batch:
            ax_p.plot(list(train_history.steps)[:len(batch)], batch, color=_modality_color(name, m), lw=0.6,
                      alpha=0.5)
    if train_history is not None:
        ax_p.plot([], [], color="0.3", marker="o", ms=3, label="over the evaluation pass")
        ax_p.plot([], [], color="0.3", lw=0.6, alpha=0.6, label="per training batch")
    ax_p.set_ylabel("perplexity (effective codes)", fontsize=8)
    ax_p.set_title("perplexity per modality", fontsize=9)
    ax_d.set_ylabel("dead codes (never used)", fontsize=8)
    ax_d.set_title("dead codes per modality" + (f" (of {s.codes})" if s.codes else ""), fontsize=9)
    if s.codes:
        ax_d.set_ylim(0, s.codes * 1.03)
    ax_s.plot(s.steps, 100 * s.shared_two, color="k", marker="o", ms=3, label=">= 2 modalities")
    if M > 2:
        ax_s.plot(s.steps, 100 * s.shared_all, color="k", ls="--", marker="s", ms=3, label=f"all {M}")
    ax_s.set_ylim(0, 103)
    ax_s.set_ylabel("% of used codes", fontsize=8)
    ax_s.set_title("codes shared across modalities", fontsize=9)
    handles = {}
    for ax in (ax_p, ax_d, ax_s):
        ax.set_xlabel("training step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=7,
               frameon=False)  # below the panels: a legend inside would cover the curves
    fig.suptitle("the codebook over training", fontsize=10)
    return fig


def purity_figure(usage, classes: Sequence[str] | None = None, top: int = 40) -> Figure:
    """Left: class entropy (nats) of each used code against its use (log x), coloured by its dominant class;
    right: the class shares of the `top` most used codes, grouped by dominant class."""
    u = _as_usage(usage)
    names = _classes(u, classes)
    stats = codebook_stats(u)
    by_class = u.sum(1)  # (K, C + 1)
    total = by_class.sum(1)
    used = np.flatnonzero(total)
    if len(used) == 0:
        raise ValueError("usage is all zeros: no code was used, so no purity to draw")
    colors = _class_colors(len(names) - 1)
    dominant = by_class.argmax(1)
    fig = NotebookFigure(figsize=(11.0, 3.6))
    ax_s, ax_h = fig.subplots(1, 2, width_ratios=[1, 1.3])
    ax_s.scatter(total[used], stats.purity[used], s=12, c=[colors[d] for d in dominant[used]], alpha=0.85,
                 linewidths=0)
    ax_s.axhline(np.log(len(names)), color="0.4", ls=":", lw=1)
    ax_s.text(total[used].min(), np.log(len(names)), f" uniform over {len(names)} slots", fontsize=7,
              va="bottom", color="0.3")
    ax_s.set_xscale("log")
    ax_s.set_ylim(-0.05, np.log(len(names)) * 1.12)
    ax_s.set_xlabel("steps assigned to the code, all modalities (log)", fontsize=8)
    ax_s.set_ylabel("class entropy (nats; 0 = pure)", fontsize=8)
    w = total[used] / total[used].sum()
    ax_s.set_title(f"code purity: use-weighted mean {np.nansum(w * stats.purity[used]):.2f} nats "
                   f"over {len(used)} used codes", fontsize=9)
    ax_s.tick_params(labelsize=7)
    present = sorted(set(dominant[used].tolist()))
    ax_s.legend(handles=[Patch(color=colors[c], label=names[c]) for c in present], fontsize=6,
                title="dominant class", title_fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    top_codes = used[np.argsort(-total[used], kind="stable")[:top]]
    top_codes = top_codes[np.lexsort((-total[top_codes], dominant[top_codes]))]
    shares = by_class[top_codes] / total[top_codes, None]  # (top, C + 1)
    im = ax_h.imshow(shares.T, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax_h.set_yticks(range(len(names)), names, fontsize=7)
    ax_h.set_xticks(range(len(top_codes)), [str(c) for c in top_codes], fontsize=6, rotation=90)
    ax_h.set_xlabel(f"code index ({len(top_codes)} most used, grouped by dominant class)", fontsize=8)
    ax_h.set_title("class shares of the most used codes", fontsize=9)
    fig.colorbar(im, ax=ax_h, fraction=0.04, label="share of the code's steps")
    fig.suptitle("what each code means: class entropy over all modalities' steps", fontsize=10)
    return fig


def _timeline_arrays(codes: Mapping[str, Any], step_labels, modalities: Sequence[str] | None):
    """-> names, (M, T) int codes, (T,) int labels; checks that every row has T steps."""
    if not codes:
        raise ValueError("codes is empty: pass {modality: code indices (T,)}")
    names = tuple(modalities) if modalities is not None else tuple(codes)
    missing = [m for m in names if m not in codes]
    if missing:
        raise ValueError(f"no codes for modality {missing}; codes has {list(codes)}")
    rows = np.stack([np.asarray(torch.as_tensor(codes[m]).cpu()).reshape(-1) for m in names])
    labels = np.asarray(torch.as_tensor(step_labels).cpu()).reshape(-1)
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
        raise ValueError(f"{len(vectors)} code vectors for a usage tensor of {u.shape[0]} codes")
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


# --------------------------------------------------------------------------- exemplars


def _exemplar_kind(data) -> str:
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


def _draw_exemplar(ax, data, kind: str, n: int, t: int, label: str = "") -> None:
    """One step's input as a thumbnail: a frame, a waveform (no ticks: its shape is the point) or a caption."""
    ax.set_xticks([])
    ax.set_yticks([])
    suffix = ""
    if kind == "frames":
        img = torch.as_tensor(data[n, t]).detach().float().cpu()
        ax.imshow(img.permute(1, 2, 0).numpy().clip(0, 1).squeeze(), cmap="gray", interpolation="nearest")
    elif kind == "waveforms":
        w = np.asarray(torch.as_tensor(data[n, t]).detach().float().cpu())
        ax.plot(np.arange(len(w)), w, lw=0.5, color=MODALITY_COLORS["audio"])
        ax.set_xlim(0, len(w) - 1)
        suffix = f", {len(w)} samples"
    else:
        ax.text(0.5, 0.5, _wrap(f"\u201c{data[n][t]}\u201d", 24), ha="center", va="center", fontsize=7,
                transform=ax.transAxes)
        for side in ax.spines.values():
            side.set_color("0.85")
    ax.set_title(f"{label}seq {n}, step {t}{suffix}", fontsize=7)


def draw_exemplars(axes: Sequence, code: int, codes, data, modality: str) -> None:
    """Fill a row of `axes` with the steps of one modality assigned to `code`: `codes` (N, T) are
    that modality's indices, `data` its frames / waveforms / captions, aligned with `codes`. The
    first panel's title names the modality."""
    places = exemplar_steps(codes, code, len(axes))
    kind = _exemplar_kind(data) if data is not None else None
    for i, ax in enumerate(axes):
        if data is None or i >= len(places):
            note = (f"{modality}: no exemplars given" if data is None else
                    f"{modality}: no step\nuses code {code}" if not places else "")
            ax.text(0.5, 0.5, note if i == 0 else "", ha="center", va="center", fontsize=7, color="0.4")
            ax.set_axis_off()
            continue
        _draw_exemplar(ax, data, kind, *places[i], label=f"{modality}: " if i == 0 else "")
        if i == 0:
            ax.title.set_color(_modality_color(modality, 0))


def draw_exemplar_strip(ax, code: int, codes, data, modality: str, k: int, size: tuple[float, float]) -> None:
    """Up to k steps of one modality assigned to `code`, side by side on ONE axes of `size` (width,
    height) inches: the explorer's light version of `draw_exemplars` (one axes per row, not per step)."""
    w, h = size
    ax.set_xlim(0, w)
    ax.set_ylim(0, h)
    ax.set_axis_off()
    places = exemplar_steps(codes, code, k)
    kind = _exemplar_kind(data)
    slot, body = w / k, h - 0.22  # inches per exemplar; a title line above each
    color = _modality_color(modality, 0)
    if not places:
        ax.text(0.05, h / 2, f"{modality}: no step uses code {code}", fontsize=8, color="0.4", va="center")
        return
    for i, (n, t) in enumerate(places):
        x0 = i * slot + 0.06
        inner = slot - 0.12
        ax.text(x0 + inner / 2, h, f"{modality}: seq {n}, step {t}" if i == 0 else f"seq {n}, step {t}",
                fontsize=7, ha="center", va="top", color=color if i == 0 else "k")
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
            ax.text(x0 + inner / 2, body / 2, _wrap(f"\u201c{data[n][t]}\u201d", max(int(inner * 14), 12)),
                    fontsize=7, ha="center", va="center")
            ax.add_patch(Rectangle((x0, 0), inner, body, fill=False, edgecolor="0.85", lw=0.6, clip_on=False))
    ax.set_aspect("auto")


def code_exemplars(code: int, codes: Mapping[str, Any], exemplars: Mapping[str, Any], k: int = 4,
                   modalities: Sequence[str] | None = None) -> Figure:
    """What a code stands for: rows = modalities, columns = up to k steps assigned to `code`.

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
    fig = NotebookFigure(figsize=(1.75 * k + 0.6, 1.65 * len(names) + 0.5))
    axes = fig.subplots(len(names), k, squeeze=False)
    for row, m in zip(axes, names):
        draw_exemplars(row, code, codes[m], exemplars.get(m), m)
    fig.suptitle(f"steps assigned to code {code}, per modality", fontsize=10)
    return fig


# --------------------------------------------------------------------------- explorer


def _codes_numpy(codes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {m: np.asarray(torch.as_tensor(c).cpu()).astype(np.int64) for m, c in codes.items()}


@dataclass
class CodebookView:
    """Plain data the explorer draws, independent of how the model is built.

    checkpoints: one usage tensor (K, M, C + 1) per training checkpoint (an evaluation pass each);
    codes: per checkpoint, modality -> code indices (N, T) of the N sequences one can pick;
    step_labels: (N, T) in [0, C] (C = background); classes: the C event class names;
    modalities: names of the usage tensor's M modalities (keys of `codes`); steps: the training step
    of each checkpoint (default 0..S-1); exemplars: modality -> frames (N, T, 3, H, W) / waveforms
    (N, T, L) / captions (N lists of T strings) of the same N sequences, or None.
    """
    checkpoints: Sequence[Any]
    codes: Sequence[Mapping[str, Any]]
    step_labels: Any
    classes: Sequence[str]
    modalities: Sequence[str] = ("video", "audio", "text")
    steps: Sequence[int] | None = None
    exemplars: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        self.checkpoints = [_as_usage(u) for u in self.checkpoints]
        if not self.checkpoints:
            raise ValueError("CodebookView needs at least one checkpoint usage tensor (K, M, C + 1)")
        shapes = {u.shape for u in self.checkpoints}
        if len(shapes) != 1:
            raise ValueError(f"checkpoint usage tensors differ in shape: {sorted(shapes)}")
        K, M, C1 = shapes.pop()
        self.modalities = _modalities(self.checkpoints[0], self.modalities)
        self.classes = _classes(self.checkpoints[0], self.classes)[:-1]
        self.steps = list(range(len(self.checkpoints))) if self.steps is None else [int(s) for s in self.steps]
        if len(self.steps) != len(self.checkpoints) or len(self.codes) != len(self.checkpoints):
            raise ValueError(f"{len(self.checkpoints)} checkpoints but {len(self.steps)} steps and "
                             f"{len(self.codes)} code sets; give one of each per checkpoint")
        self.step_labels = np.asarray(torch.as_tensor(self.step_labels).cpu()).astype(np.int64)
        if self.step_labels.ndim != 2 or self.step_labels.min() < 0 or self.step_labels.max() > C1 - 1:
            raise ValueError(f"step_labels of shape {self.step_labels.shape} with values in "
                             f"[{self.step_labels.min()}, {self.step_labels.max()}]; expected (N, T) in [0, {C1 - 1}]")
        self.codes = [self._check_codes(i, c, K) for i, c in enumerate(self.codes)]
        for m, data in (self.exemplars or {}).items():
            if m not in self.modalities:
                raise ValueError(f"exemplars for unknown modality {m!r}; modalities: {self.modalities}")
            _exemplar_kind(data)
            if len(data) != len(self.step_labels):
                raise ValueError(f"{len(data)} {m} exemplars for {len(self.step_labels)} sequences")

    def _check_codes(self, i: int, codes: Mapping[str, Any], K: int) -> dict[str, np.ndarray]:
        codes = _codes_numpy(codes)
        if set(codes) != set(self.modalities):
            raise ValueError(f"checkpoint {i}: codes for {sorted(codes)}; expected {sorted(self.modalities)}")
        for m, c in codes.items():
            if c.shape != self.step_labels.shape or c.min() < 0 or c.max() >= K:
                raise ValueError(f"checkpoint {i}: {m} codes of shape {c.shape} in [{c.min()}, {c.max()}]; "
                                 f"expected {self.step_labels.shape} (like step_labels) in [0, {K - 1}]")
        return codes

    @property
    def n_codes(self) -> int:
        return self.checkpoints[0].shape[0]


def _draw_code_usage(ax, u: np.ndarray, code: int, names: Sequence[str], classes: Sequence[str]) -> None:
    """Grouped bars: steps of each class assigned to `code`, one bar per modality."""
    counts = u[code]  # (M, C + 1)
    x = np.arange(counts.shape[1])
    width = 0.8 / len(names)
    for m, name in enumerate(names):
        ax.bar(x + (m - (len(names) - 1) / 2) * width, counts[m], width, color=_modality_color(name, m),
               label=f"{name} ({int(counts[m].sum())})")
    ax.set_xticks(x, [_wrap(c, 10) for c in classes], fontsize=6, rotation=60)
    ax.set_ylabel("steps assigned", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, title="modality (steps)", title_fontsize=7, loc="best")
    purity = codebook_stats(u).purity[code]
    n = int(counts.sum())
    head = f"code {code}: {n} steps"
    if n:
        head += f", class entropy {purity:.2f} nats, mostly {classes[int(counts.sum(0).argmax())]}"
    ax.set_title(head, fontsize=9)


def _draw_ranked_usage(ax, u: np.ndarray, code: int, names: Sequence[str]) -> None:
    """Rank-frequency curve per modality (steps per code, each modality's codes sorted by its own
    use, log y); the picked code is a dot on each curve at its rank there."""
    per_code = u.sum(2)  # (K, M)
    K = len(per_code)
    for m, name in enumerate(names):
        order = np.argsort(-per_code[:, m], kind="stable")
        counts = per_code[order, m]
        color = _modality_color(name, m)
        ax.step(np.arange(K), np.maximum(counts, 0.8), where="mid", lw=1.2, color=color, label=name)
        if per_code[code, m]:
            rank = int(np.flatnonzero(order == code)[0])
            ax.plot(rank, per_code[code, m], "o", ms=5, mfc=color, mec="k", mew=0.6)
    ax.plot([], [], "o", ms=5, mfc="w", mec="k", label=f"code {code}")
    ax.set_yscale("log")
    ax.set_ylim(0.7, max(per_code.max(), 1) * 2.0)
    ax.set_xlim(-0.5, K - 0.5)
    ax.set_xlabel("code rank within the modality", fontsize=8)
    ax.set_ylabel("steps assigned (log)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best")


def _inches(fig: Figure, left: float, bottom: float, width: float, height: float) -> dict:
    """gridspec bounds from inches measured from the figure's bottom-left corner."""
    W, H = fig.get_size_inches()
    return dict(left=left / W, right=(left + width) / W, bottom=bottom / H, top=(bottom + height) / H)


def _stack_pngs(parts: Sequence[bytes]) -> bytes:
    """PNG images stacked top to bottom on white (left-aligned) -> one PNG."""
    from PIL import Image

    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in parts]
    out = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    y = 0
    for i in images:
        out.paste(i, (0, y))
        y += i.height
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


class CodebookExplorer(Explorer):
    """An ipywidgets codebook explorer over a `CodebookView`; `.widget` is what the notebook shows.

    Controls: train step (a checkpoint; disabled with one checkpoint), code (sorted by use at the
    checkpoint, labelled with its steps per modality), sequence (disabled with one sequence),
    exemplars per modality (disabled without exemplars). The picture shows, at the checkpoint, the
    rank-frequency curve of each modality with the code marked, what maps to the code in each
    modality (steps by class, exemplars), and the sequence's code timelines side by side. The part
    a control does not touch is reused, so moving the sequence does not redraw the code's panel.
    """

    def __init__(self, view: CodebookView, code: int | None = None, sequence: int = 0, exemplars: int = 3,
                 checkpoint: int = 0, dpi: int = 80):
        import ipywidgets as W

        if not isinstance(view, CodebookView):
            raise ValueError(f"view is a {type(view).__name__}; pass a CodebookView")
        n_seq = len(view.step_labels)
        for name, value, hi in (("sequence", sequence, n_seq - 1), ("checkpoint", checkpoint, len(view.steps) - 1),
                                ("code", 0 if code is None else code, view.n_codes - 1),
                                ("exemplars", exemplars - 1, 5)):
            if not 0 <= int(value) <= hi:
                raise ValueError(f"{name}={value!r}; accepted {1 if name == 'exemplars' else 0}.."
                                 f"{hi + 1 if name == 'exemplars' else hi}")
        self.view, self.dpi = view, dpi
        self._cache: dict[str, tuple[tuple, bytes]] = {}
        style = {"description_width": "75px"}
        super().__init__({
            "checkpoint": W.SelectionSlider(options=[(str(s), i) for i, s in enumerate(view.steps)],
                                            value=checkpoint, description="train step", continuous_update=False,
                                            style=style),
            "code": W.Dropdown(options=self._code_options(checkpoint),
                               value=self._top_code(checkpoint) if code is None else int(code),
                               description="code", style=style),
            "sequence": W.IntSlider(value=sequence, min=0, max=n_seq - 1, description="sequence",
                                    continuous_update=False, style=style),
            "exemplars": W.IntSlider(value=exemplars, min=1, max=6, description="exemplars",
                                     continuous_update=False, style=style),
        })
        self.update()

    def layout(self) -> list:
        import ipywidgets as W

        c = self.controls
        return [W.HBox([c["checkpoint"], c["code"]]), W.HBox([c["sequence"], c["exemplars"]]), self.status,
                self.image, self.info]

    def applies(self) -> dict[str, bool]:
        return {"checkpoint": len(self.view.steps) > 1, "sequence": len(self.view.step_labels) > 1,
                "exemplars": bool(self.view.exemplars)}

    # ----- state
    def _top_code(self, i: int) -> int:
        return int(self.view.checkpoints[i].sum((1, 2)).argmax())

    def _code_options(self, i: int) -> list[tuple[str, int]]:
        """Dropdown entries 'code  (steps per modality)', most used first, unused codes last."""
        per_code = self.view.checkpoints[i].sum(2)  # (K, M)
        order = np.argsort(-per_code.sum(1), kind="stable")
        short = [m[0].upper() for m in self.view.modalities]
        return [(f"{k}  (" + " ".join(f"{s} {int(n)}" for s, n in zip(short, per_code[k])) + ")", int(k))
                for k in order]

    def update(self, change=None) -> None:
        if change is not None and change.get("owner") is self.controls["checkpoint"] and not self._quiet:
            code = self.controls["code"]
            keep = code.value
            self._quiet = True  # relabel the code list for the new checkpoint without drawing on the way
            try:
                code.options = self._code_options(change["new"])
                code.value = keep
            finally:
                self._quiet = False
        super().update(change)

    # ----- drawing
    def _part(self, name: str, key: tuple, draw) -> bytes:
        """A picture part, redrawn only when its inputs `key` changed."""
        if name not in self._cache or self._cache[name][0] != key:
            self._cache[name] = (key, draw())
        return self._cache[name][1]

    def render(self) -> tuple[bytes, str]:
        v = self.values()
        code = self._part("code", (v["checkpoint"], v["code"], v["exemplars"]), self.code_png)
        seq = self._part("sequence", (v["checkpoint"], v["sequence"]), self.sequence_png)
        stats = codebook_stats(self.view.checkpoints[v["checkpoint"]])
        per_mod = self.view.checkpoints[v["checkpoint"]][v["code"]].sum(1)  # (M,)
        text = (f"step <b>{self.view.steps[v['checkpoint']]}</b>: {stats.used} of {self.view.n_codes} codes used, "
                f"{100 * stats.shared_two:.0f}% of them by &ge; 2 modalities &middot; code <b>{v['code']}</b>: "
                + ", ".join(f"{m} {int(n)} steps" for m, n in zip(self.view.modalities, per_mod))
                + f" &middot; sequence <b>{v['sequence']}</b>")
        return _stack_pngs([code, seq]), text

    def code_png(self) -> bytes:
        """The codebook at the checkpoint, the code's usage by class and its exemplars (PNG bytes).

        Laid out by hand (no constrained layout): this redraws on every change of its controls."""
        v, view = self.values(), self.view
        u, k = view.checkpoints[v["checkpoint"]], v["exemplars"]
        shown = [m for m in view.modalities if m in (view.exemplars or {})]
        rows = len(shown)
        W, row_h, top_h = 10.0, 1.45, 3.25
        fig = Figure(figsize=(W, top_h + row_h * rows + (0.45 if rows else 0)))
        H = fig.get_size_inches()[1]
        top = fig.add_gridspec(1, 2, width_ratios=[1, 1.25], wspace=0.28,
                               **_inches(fig, 0.75, H - top_h + 0.85, W - 1.0, top_h - 1.45))
        ax_u, ax_c = fig.add_subplot(top[0]), fig.add_subplot(top[1])
        stats = codebook_stats(u)
        _draw_ranked_usage(ax_u, u, v["code"], view.modalities)
        ax_u.set_title(f"step {view.steps[v['checkpoint']]}: perplexity " + ", ".join(
            f"{m} {p:.0f}" for m, p in zip(view.modalities, stats.perplexity)) +
            f"\n{stats.used} codes used, {100 * stats.shared_two:.0f}% by >= 2 modalities"
            + (f", {100 * stats.shared_all:.0f}% by all" if len(view.modalities) > 2 else ""), fontsize=8)
        _draw_code_usage(ax_c, u, v["code"], view.modalities, tuple(view.classes) + ("background",))
        if rows:
            codes = view.codes[v["checkpoint"]]
            for r, m in enumerate(shown):
                box = (0.3, row_h * (rows - 1 - r) + 0.1, W - 0.6, row_h - 0.15)  # inches
                ax = fig.add_axes((box[0] / W, box[1] / H, box[2] / W, box[3] / H))
                draw_exemplar_strip(ax, v["code"], codes[m], view.exemplars[m], m, k, box[2:])

            missing = [m for m in view.modalities if m not in shown]
            fig.text(0.5, (row_h * rows + 0.3) / H, f"up to {k} steps of the explorer's sequences assigned to code "
                     f"{v['code']} (at this checkpoint)" + (f"; no exemplars given for {', '.join(missing)}"
                                                            if missing else ""), ha="center", va="center",
                     fontsize=9)
        return _png(fig, self.dpi)

    def sequence_png(self) -> bytes:
        """The picked sequence's code timeline in every modality at the checkpoint (PNG bytes)."""
        v, view = self.values(), self.view
        codes, n, M = view.codes[v["checkpoint"]], v["sequence"], len(view.modalities)
        W, H = 10.0, 0.42 * (M + 1) + 0.9
        fig = Figure(figsize=(W, H))
        ax = fig.add_subplot(fig.add_gridspec(1, 1, **_inches(fig, 0.75, 0.45, W - 3.2, H - 0.8))[0])
        draw_timeline(ax, {m: codes[m][n] for m in view.modalities}, view.step_labels[n], view.classes,
                      view.modalities, title=f"sequence {n} at step {view.steps[v['checkpoint']]}")
        return _png(fig, self.dpi)


def codebook_explorer(view: CodebookView, code: int | None = None, sequence: int = 0, exemplars: int = 3):
    """The codebook explorer's widget box for `view` (its `.explorer` holds the state); see `CodebookExplorer`."""
    return CodebookExplorer(view, code, sequence, exemplars).widget
