"""Figures and tables of study 01 (robust fine-tuning with counterfactual masks).

Everything draws a `workbench.studies.cam_counterfactual.Result` (or its tables): the ID-vs-OOD
scatter with the WiSE-FT curve, accuracy per split, training curves, and Markdown tables.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .world import check_rows

_COLORS = {"zero_shot": "#222222", "linear_probe": "#8c8c8c", "full_ft": "#d62728", "lp_ft": "#ff7f0e",
           "wise_ft": "#9467bd",
           "flyp": "#8c564b", "fd": "#1f77b4", "mask_fd": "#2ca02c", "mask_fd_cached": "#17becf"}
_MARKERS = {"zero_shot": "*", "mask_fd": "D", "mask_fd_cached": "d"}


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def id_ood_scatter(table: Sequence[Mapping], wise_curve: Sequence[Mapping] = (), id_split: str = "id_test",
                   ood: str = "ood_avg", title: str | None = None) -> plt.Figure:
    """Each method at (ID accuracy, OOD accuracy), mean +- std over seeds; the WiSE-FT curve as a line."""
    table = check_rows(table)
    wise_curve = check_rows(wise_curve, "wise_curve", nonempty=False)
    fig, ax = plt.subplots(figsize=(7.8, 4.6))
    if wise_curve:
        xs = [100 * r[id_split] for r in wise_curve]
        ys = [100 * r[ood] for r in wise_curve]
        ax.plot(xs, ys, "-", color=_COLORS["wise_ft"], alpha=0.6, lw=1.5, label="WiSE-FT curve (alpha 0..1)",
                zorder=1)
        for r, x, y in zip(wise_curve, xs, ys):
            ax.annotate(f"{r['alpha']:g}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7,
                        color=_COLORS["wise_ft"])
    for r in table:
        m = r["method"]
        ax.errorbar(100 * r[id_split], 100 * r[ood], xerr=100 * r.get(f"{id_split}_std", 0),
                    yerr=100 * r.get(f"{ood}_std", 0), fmt=_MARKERS.get(m, "o"), ms=9 if m in _MARKERS else 6,
                    color=_COLORS.get(m, "#555555"), label=r.get("label", m), capsize=2, zorder=3)
    ax.set_xlabel(f"ID accuracy ({id_split}), %")
    ax.set_ylabel(f"OOD accuracy ({ood}), %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(title or "Fine-tuning: in-distribution vs out-of-distribution")
    fig.tight_layout()
    return fig


def split_bars(table: Sequence[Mapping], splits: Sequence[str]) -> plt.Figure:
    """Grouped bars: accuracy per split (x) for each method (colour), with the seed std as error bars."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(splits), 3.6))
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(splits))
    for i, r in enumerate(table):
        means = [100 * r[s] for s in splits]
        stds = [100 * r.get(f"{s}_std", 0) for s in splits]
        ax.bar(x + (i - (len(table) - 1) / 2) * width, means, width, yerr=stds, capsize=1.5,
               color=_COLORS.get(r["method"], "#555555"), label=r.get("label", r["method"]))
    ax.set_xticks(x, splits)
    ax.set_ylabel("accuracy, %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


TRAINING_PANELS = (  # (history key per method, y label, title): only like is plotted with like
    ("ce", "cross-entropy", "classification loss (CE) on the training batch"),
    ("distill", "feature MSE to the frozen teacher", "distillation term (FD: clean images; masked: counterfactuals)"),
    ("batch_acc", "accuracy on the training batch", "training-batch accuracy (every method)"),
)


def _series(history: Sequence[Mapping], key: str) -> tuple[list[int], list[float]]:
    """Steps and values of `key`; a plain CE objective logs its CE as the total `loss`."""
    rows = [h for h in history if key in h]
    if key == "ce" and not rows and all("distill" not in h for h in history) and any("batch_acc" in h for h in history):
        rows = [{**h, "ce": h["loss"]} for h in history if "loss" in h]
    return [h["step"] for h in rows], [h[key] for h in rows]


def training_curves(cells: Mapping[str, Mapping[int, Mapping]], labels: Mapping[str, str] | None = None,
                    contrastive: Sequence[str] = ("flyp",)) -> plt.Figure:
    """Training curves of each trained method (first seed), in panels that compare like with like:
    the CE term, the distillation term, and the training-batch accuracy. Methods in `contrastive`
    (FLYP: a CLIP loss on captions, not a CE) appear only in the accuracy panel. `labels`: method ->
    the name shown (default: the id)."""
    labels = dict(labels or {})
    fig, axes = plt.subplots(1, len(TRAINING_PANELS), figsize=(13.5, 3.3))
    for ax, (key, ylabel, title) in zip(axes, TRAINING_PANELS):
        for method, per_seed in cells.items():
            if key == "ce" and method in contrastive:
                continue
            steps, values = _series(next(iter(per_seed.values())).get("history", []), key)
            if steps:
                ax.plot(steps, values, label=labels.get(method, method), color=_COLORS.get(method, "#555555"),
                        marker="o" if len(steps) < 6 else None, ms=3)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        if key != "batch_acc":
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    handles = {h.get_label(): h for ax in axes for h in ax.get_lines()}
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=min(len(handles), 5), fontsize=8,
               bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    return fig


def results_markdown(table: Sequence[Mapping], splits: Sequence[str]) -> str:
    """The results table as Markdown: accuracy % mean +- std over seeds per split, seconds per step."""
    head = "| method | " + " | ".join(splits) + " | s/step |"
    lines = [head, "|---|" + "---|" * (len(splits) + 1)]
    for r in table:
        cells = [f"{_pct(r[s])} ± {100 * r.get(f'{s}_std', 0):.1f}" for s in splits]
        sps = r.get("seconds_per_step")
        step = "-" if not sps else f"{sps:.3f}"
        lines.append(f"| {r.get('label', r['method'])} | " + " | ".join(cells) + f" | {step} |")
    return "\n".join(lines)


def cost_markdown(cost: Sequence[Mapping]) -> str:
    """Seconds per step, ratio to FT and one-off seconds (the cached teacher CAMs), as Markdown."""
    lines = ["| method | s/step | x FT | one-off s |", "|---|---|---|---|"]
    for r in cost:
        ratio = "-" if r.get("ratio_to_ft") is None else f"{r['ratio_to_ft']:.2f}"
        lines.append(f"| {r.get('label', r['method'])} | {r['seconds_per_step']:.3f} | {ratio} | "
                     f"{r.get('one_off_seconds', 0.0):.1f} |")
    return "\n".join(lines)


def wise_markdown(curve: Sequence[Mapping], splits: Sequence[str]) -> str:
    """The WiSE-FT curve as Markdown: one row per alpha."""
    lines = ["| alpha | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for r in curve:
        lines.append(f"| {r['alpha']:g} | " + " | ".join(_pct(r[s]) for s in splits) + " |")
    return "\n".join(lines)
