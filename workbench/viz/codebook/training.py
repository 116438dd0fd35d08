"""The codebook over training: perplexity, dead codes and shared codes per checkpoint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .base import NotebookFigure, _as_usage, _modalities, _modality_color
from .stats import codebook_stats


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


AXIS_DECADES = 1e-4  # the gradient-norm axis spans 4 decades below the largest norm


def loss_grad_norms(steps: Sequence[int], norms: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """The gradient norm each loss term alone puts on the semantic encoders, over training (log scale): which
    term pulls the semantic features how hard (`steps` (S,), `norms` {term: S values}, from a kept cell)."""
    terms = [t for t, v in norms.items() if len(v) == len(steps) and any(x > 0 for x in v)]
    if not terms:
        raise ValueError(f"no loss term with a non-zero gradient norm at the {len(steps)} recorded steps "
                         f"(terms given: {', '.join(norms) or 'none'})")
    fig = NotebookFigure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    top = max(max(norms[t]) for t in terms)
    floor = top * AXIS_DECADES  # a term's first-step norm can be ~1e-6 (L_cmcm): it would stretch the axis
    clipped = False
    for i, term in enumerate(terms):
        values = [max(x, floor) for x in norms[term]]
        clipped = clipped or any(x < floor for x in norms[term])
        ax.plot(steps, values, marker="o", ms=3, label=term, color=f"C{i}")
    ax.set_yscale("log")
    ax.set_ylim(floor / 1.5, top * 1.5)
    if clipped:
        ax.annotate(f"values below {floor:.0e} drawn at the floor", (0.01, 0.02), xycoords="axes fraction",
                    fontsize=7, color="0.4")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm on the semantic encoders")
    ax.set_title(title or "each loss term's pull on the semantic features", fontsize=10)
    ax.legend(fontsize=8, ncol=min(3, len(terms)), frameon=False)
    ax.grid(alpha=0.3, which="both")
    return fig
