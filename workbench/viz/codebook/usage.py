"""How much each code is used: per-modality histograms, class purity, and the explorer's usage panels."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from workbench.checks import check_number

from .base import NotebookFigure, _as_usage, _class_colors, _classes, _modalities, _modality_color, _wrap
from .stats import codebook_stats


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


def purity_figure(usage, classes: Sequence[str] | None = None, top: int = 40) -> Figure:
    """Left: class entropy (nats) of each used code against its use (log x), coloured by its dominant class;
    right: the class shares of the `top` most used codes, grouped by dominant class."""
    top = check_number(top, "top", integer=True, ge=1)  # codes shown on the right
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


def draw_code_usage(ax, u: np.ndarray, code: int, names: Sequence[str], classes: Sequence[str]) -> None:
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


def draw_ranked_usage(ax, u: np.ndarray, code: int, names: Sequence[str]) -> None:
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

