"""Pictures for study 2 (mode approximation vs baselines): what `studies.cp_rank_ablation` returns.

    fig = metric_vs_params(result.table)          # every method: metric vs trainable params (log x)
    fig = rank_curve(result.table)                # mode approx by R (± std over seeds), LoRA at its own count
    fig = convergence(result.curves)              # validation score vs steps, every method
    fig = token_norms(result.token_norms)         # token-embedding row norms of the class names
    fig = factor_heatmaps(result.factors)         # learned U, V and core slices
    fig = mode_vector_heatmap(result.factors)     # lambda of every adapted matrix

Every function takes the study's plain rows / tensors and returns a matplotlib Figure.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .world import check_rows

METRIC_LABELS = {
    "r1": "retrieval R@1 (both directions)",
    "acc_test": "accuracy, test classes", "acc_novel": "accuracy, 4 novel classes",
    "acc_heldout": "accuracy, heldout (pretrain classes)", "i2t_r1": "image->text R@1",
    "i2t_r5": "image->text R@5", "t2i_r1": "text->image R@1", "t2i_r5": "text->image R@5",
}
STYLE = {  # method -> (colour, marker)
    "mode_approx": ("C0", "o"), "mode_approx_cp": ("C9", "D"), "mode_approx_noshare": ("C4", "s"),
    "mode_approx_gated": ("C8", "^"), "mode_approx_context": ("C6", "v"), "lora": ("C1", "o"),
    "loha": ("C2", "P"), "lokr": ("C5", "X"), "vera": ("C7", "*"), "bitfit": ("C3", "h"),
    "linear_probe": ("0.4", "<"), "full_ft": ("k", ">"),
}
SWEPT = ("mode_approx", "lora")  # drawn as lines through their ranks


def _rows(table: Sequence[dict], method: str, metric: str) -> list[dict]:
    rows = [r for r in table if r["method"] == method and r.get(metric) is not None]
    return sorted(rows, key=lambda r: (r["trainable"], r["rank"] or 0))


def _std(rows: Sequence[dict], metric: str) -> np.ndarray:
    return np.array([r.get(f"{metric}_std") or 0.0 for r in rows])


def _zero_shot(ax, table: Sequence[dict], metric: str) -> None:
    zs = [r for r in table if r["method"] == "zero_shot" and r.get(metric) is not None]
    if zs:
        ax.axhline(zs[0][metric], color="0.5", ls="--", lw=1, label="zero-shot")


def _grid(n: int, width: float = 4.6, height: float = 3.6) -> tuple[Figure, np.ndarray]:
    cols = 2 if n == 4 else min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


DEFAULT_METRICS = ("r1", "acc_test", "i2t_r1", "acc_heldout")


def _measured(table: Sequence[dict], metrics: Sequence[str]) -> list[str]:
    """The metrics some trained method has a value for (acc_novel is None on a task without novel classes)."""
    table = check_rows(table)
    if isinstance(metrics, str):
        raise TypeError(f"metrics={metrics!r} is one string; accepted: a sequence of metric names, e.g. ({metrics!r},)")
    found = [m for m in metrics if any(r.get(m) is not None for r in table if r.get("method") != "zero_shot")]
    if not found:
        raise ValueError(f"no trained method's row has a value for any of metrics={tuple(metrics)!r}; accepted: "
                         f"metrics the table holds, e.g. {', '.join(sorted({k for r in table for k in r}))[:200]}")
    return found


def metric_vs_params(table: Sequence[dict], metrics: Sequence[str] = DEFAULT_METRICS) -> Figure:
    """One panel per metric: mean ± std over seeds against trainable parameters (log x), every method."""
    metrics = _measured(table, metrics)
    fig, axes = _grid(len(metrics))
    methods = list(dict.fromkeys(r["method"] for r in table if r["method"] != "zero_shot"))
    for ax, metric in zip(axes, metrics):
        for method in methods:
            rows = _rows(table, method, metric)
            if not rows:
                continue
            colour, marker = STYLE.get(method, ("C0", "o"))
            x = np.array([max(r["trainable"], 1) for r in rows])
            y = np.array([r[metric] for r in rows])
            ax.errorbar(x, y, yerr=_std(rows, metric), color=colour, marker=marker, capsize=3, ms=6,
                        ls="-" if method in SWEPT else "none", label=rows[0]["label"])
        _zero_shot(ax, table, metric)
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle("metric vs trainable parameters (mean ± std over seeds)")
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    return fig


def rank_curve(table: Sequence[dict], metrics: Sequence[str] = DEFAULT_METRICS) -> Figure:
    """Mode approx by rank R (error bars: std over seeds); LoRA at the nearest parameter count it can reach,
    drawn at the R it is compared with and labelled with its own rank and count; ablations at their R."""
    metrics = _measured(table, metrics)
    fig, axes = _grid(len(metrics))
    for ax, metric in zip(axes, metrics):
        ma = sorted(_rows(table, "mode_approx", metric), key=lambda r: r["rank"])
        if ma:
            ax.errorbar([r["rank"] for r in ma], [r[metric] for r in ma], yerr=_std(ma, metric), marker="o",
                        capsize=3, color=STYLE["mode_approx"][0], label=ma[0]["label"])
        _lora_points(ax, table, metric)
        for k, method in enumerate(("mode_approx_cp", "mode_approx_noshare", "mode_approx_gated",
                                    "mode_approx_context")):
            rows = _rows(table, method, metric)
            if rows:
                colour, marker = STYLE[method]
                shift = 2 ** (0.06 * (k + 1))  # side by side at the same R
                ax.errorbar([r["rank"] * shift for r in rows], [r[metric] for r in rows], yerr=_std(rows, metric),
                            marker=marker, ls="none", capsize=3, color=colour, label=rows[0]["label"])
        _zero_shot(ax, table, metric)
        ranks = [r["rank"] for r in ma]
        ax.set_xscale("log", base=2)
        if ranks:
            ax.set_xticks(ranks, [f"{r['rank']}\n{_short(r['trainable'])}" for r in ma])
        ax.set_xlabel("rank R  (mode-approx parameters)")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle("rank ablation: mode approximation by R, LoRA at the nearest count it can reach")
    fig.tight_layout()
    _legend_below(fig, axes[0])
    return fig


def _lora_points(ax, table: Sequence[dict], metric: str) -> None:
    """LoRA next to each R it is compared with, one series per LoRA rank, labelled with its own size."""
    for k, row in enumerate(_rows(table, "lora", metric)):
        Rs = sorted(row.get("matches_R", []))
        if not Rs:
            continue
        ax.errorbar([R * 2 ** -0.06 for R in Rs], [row[metric]] * len(Rs), yerr=[_std([row], metric)[0]] * len(Rs),
                    marker="s", ls="none", capsize=3, color=STYLE["lora"][0], alpha=1.0 - 0.25 * (k % 3),
                    label=f"LoRA r={row['rank']} ({_short(row['trainable'])} params) at R={Rs}")


def _legend_below(fig: Figure, ax) -> None:
    """One legend for the figure, below the panels (never over the data)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))


def convergence(curves: Sequence, steps_line: int | None = None) -> Figure:
    """Validation score (mean of accuracy and R@1; the probe: accuracy) against training steps, one line
    per (method, rank), mean over seeds: a method has converged where its line is flat."""
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for c in sorted(curves, key=lambda c: (c.method, c.rank or 0)):
        colour, marker = STYLE.get(c.method, ("C0", "o"))
        rank = "" if c.rank is None else f" R={c.rank}" if c.method.startswith("mode_approx") else f" r={c.rank}"
        ls = "-" if c.method == "mode_approx" else "--" if c.method.startswith("mode_approx") else ":"
        alpha = 0.35 + 0.65 * ((c.rank or 64) / 64) ** 0.3 if c.method == "mode_approx" else 1.0
        ax.plot(c.steps, c.score, marker=marker, ms=4, ls=ls, color=colour, alpha=min(alpha, 1.0),
                label=f"{c.method}{rank}")
    ax.set_xlabel("training step")
    ax.set_ylabel("validation score")
    ax.set_title("convergence on the validation slice (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def token_norms(rows: Sequence[dict]) -> Figure:
    """Token-embedding row norm of every class name, coloured by whether pretraining used the word."""
    fig, ax = plt.subplots(figsize=(8.5, 3.0))
    colours = {"pretraining class": "C0", "novel class": "C3", "other word": "0.5"}
    names = [r["word"] for r in rows]
    ax.bar(names, [r["norm"] or 0.0 for r in rows], color=[colours[r["kind"]] for r in rows])
    for kind, colour in colours.items():
        if any(r["kind"] == kind for r in rows):
            ax.bar([], [], color=colour, label=kind)
    ax.set_ylabel("embedding row norm (L2)")
    ax.set_title("token embeddings: words pretraining never used stay at their initial size")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _short(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


def factor_heatmaps(snapshot, n_core_slices: int = 4) -> Figure:
    """The learned shared factors: U (R x d), V^T (R x d) and the first core slices C[:, :, k] (R x R)."""
    U, V = snapshot.U.float().numpy(), snapshot.V.float().numpy().T  # (R, d) each
    core = None if snapshot.core is None else snapshot.core.float().numpy()
    n_slices = 0 if core is None else min(n_core_slices, core.shape[-1])
    fig = plt.figure(figsize=(12, 3.2 + 2.6 * (n_slices > 0)))
    spec = fig.add_gridspec(2 if n_slices else 1, max(n_slices, 2))
    for k, (name, M) in enumerate((("U (d -> R)", U), ("V^T (R -> d)", V))):
        ax = fig.add_subplot(spec[0, : max(n_slices, 2) // 2] if k == 0 else spec[0, max(n_slices, 2) // 2:])
        _heat(fig, ax, M, f"{name}: {M.shape[0]} x {M.shape[1]}")
        ax.set_xlabel("hidden unit")
        ax.set_ylabel("rank component")
    for k in range(n_slices):
        ax = fig.add_subplot(spec[1, k])
        _heat(fig, ax, core[:, :, k], f"core C[:, :, {k}]")
    fig.suptitle(f"learned shared factors, R={snapshot.rank}, seed {snapshot.seed} ({snapshot.form} form)")
    fig.tight_layout()
    return fig


def mode_vector_heatmap(snapshot) -> Figure:
    """lambda (length R) of every adapted matrix block (rows; V = vision, T = text), and its change
    from initialisation when the snapshot holds it (the trained values alone mostly show the init)."""
    labels = list(snapshot.modes)
    M = np.stack([snapshot.modes[k].float().numpy() for k in labels])  # (n_blocks, R)
    panels = [("lambda after training", M)]
    if snapshot.modes_init:
        M0 = np.stack([snapshot.modes_init[k].float().numpy() for k in labels])
        panels.append(("lambda - lambda at init", M - M0))
    width = max(4.0, 0.35 * M.shape[1] + 2.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), max(4.0, 0.12 * len(labels) + 1.5)),
                             squeeze=False)
    step = max(1, len(labels) // 40)
    for ax, (title, data) in zip(axes.flat, panels):
        _heat(fig, ax, data, f"{title}\n({len(labels)} matrix blocks x R={M.shape[1]})")
        ax.set_yticks(range(0, len(labels), step), labels[::step], fontsize=6)
        ax.set_xlabel("rank component r")
    fig.tight_layout()
    return fig


def _heat(fig: Figure, ax, M: np.ndarray, title: str) -> None:
    lim = float(np.abs(M).max()) or 1.0
    im = ax.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    ax.set_title(title, fontsize=9)
