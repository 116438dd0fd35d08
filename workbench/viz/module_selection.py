"""Figures and the explorer of study 04 (modular model, module selection per task, modality gap).

Every function returns a matplotlib Figure (no pyplot) drawn from the study's tables and kept outputs:

    gap_vs_k(table)            L2M / L2I / RMG of image-text and video-text pairs against k
    scores_vs_k(table)         R@1 and every task's score against k
    cosine_histograms(kept)    matched vs unmatched cross-modal cosines per modality and model
    embedding_map(kept)        a 2-D PCA projection of image, video and text embeddings by modality
    module_graphs(tasks)       the module graph of each task with its default path lit
    score_vs_cost(paths)       each task's score against FLOPs per item, one point per valid path
    direction_bars(table)      direction accuracy with the temporal modules on and off, against chance
    temperature_and_shift(...) "Mind the Gap": gap and R@1 against the temperature; the shift curves
    explorer(result)           ipywidgets: a task's path lit and its answer on a sample, across paths and k
"""
from __future__ import annotations

import html
import io
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from workbench.data.modular_tasks import ANSWERS
from workbench.methods.modular import TASKS, valid_paths
from workbench.world import ALL_CLASSES

from .explorer import Explorer
from .modular import path_figure

MODALITY_COLOURS = {"image": "C0", "video": "C2", "text": "C3"}
SCORE_LABELS = {"image_r1": "image-text R@1", "video_r1": "video-text R@1", "caption_slots": "caption, all slots",
                "slot_mean": "caption slots right (mean)",
                "qa_acc": "QA accuracy", "cls_acc": "classification accuracy"}


def _k_axis(rows: Sequence[Mapping]) -> tuple[list[str], np.ndarray]:
    labels = [str(r["setting"]) for r in rows]
    return labels, np.arange(len(rows))


def _line(ax, rows, metric: str, label: str, **kw) -> None:
    labels, x = _k_axis(rows)
    y = np.array([np.nan if r.get(metric) is None else r[metric] for r in rows], dtype=float)
    e = np.array([r.get(f"{metric}_std") or 0.0 for r in rows], dtype=float)
    ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=label, **kw)
    ax.set_xticks(x, labels)


def gap_vs_k(table: Sequence[Mapping]) -> Figure:
    """The modality gap against the number k of shared text layers (mean ± std over seeds)."""
    rows = [r for r in table if r["method"] == "modular"]
    fig = Figure(figsize=(11, 3.4))
    for i, (metric, name) in enumerate((("l2m", "L2M (centroid distance)"), ("l2i", "L2I (mean pair distance)"),
                                        ("rmg", "RMG (relative gap)"))):
        ax = fig.add_subplot(1, 3, i + 1)
        for mod in ("image", "video"):
            _line(ax, rows, f"{mod}_{metric}", f"{mod}-text", color=MODALITY_COLOURS[mod])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("shared layers k")
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def scores_vs_k(table: Sequence[Mapping]) -> Figure:
    """Retrieval R@1 and every task's score against k (mean ± std over seeds)."""
    rows = [r for r in table if r["method"] == "modular"]
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot(1, 2, 1)
    for metric in ("image_r1", "video_r1"):
        _line(ax, rows, metric, SCORE_LABELS[metric])
    ax.set(xlabel="shared layers k", ylabel="R@1 (mean of both directions)", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 2, 2)
    for metric in ("slot_mean", "qa_acc", "cls_acc", "dir_acc"):
        _line(ax, rows, metric, SCORE_LABELS.get(metric, "direction accuracy"))
    ax.set(xlabel="shared layers k", ylabel="score", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def cosine_histograms(kept: Mapping[str, Mapping]) -> Figure:
    """Matched (paired) and unmatched cross-modal cosine similarities: one row per model, one column per modality."""
    models = [m for m in kept if kept[m].get("cosines")]
    fig = Figure(figsize=(9, 2.6 * max(len(models), 1)))
    for i, name in enumerate(models):
        for j, task in enumerate(("image_retrieval", "video_retrieval")):
            ax = fig.add_subplot(len(models), 2, 2 * i + j + 1)
            c = kept[name]["cosines"].get(task)
            if c is None:
                ax.set_axis_off()
                continue
            bins = np.linspace(-0.5, 1.0, 40)
            ax.hist(c["unmatched"], bins=bins, density=True, alpha=0.6, color="0.5", label="unmatched")
            ax.hist(c["matched"], bins=bins, density=True, alpha=0.7, color=MODALITY_COLOURS[task.split("_")[0]],
                    label="matched")
            ax.set_title(f"{name}: {task.split('_')[0]}-text", fontsize=9)
            ax.set_xlabel("cosine similarity", fontsize=8)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def embedding_map(kept: Mapping[str, Mapping]) -> Figure:
    """A 2-D PCA projection (fitted per model on all its points) of image, video and text embeddings."""
    from sklearn.decomposition import PCA

    models = [m for m in kept if kept[m].get("embeddings")]
    fig = Figure(figsize=(3.6 * max(len(models), 1), 3.6))
    for i, name in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        e = kept[name]["embeddings"]
        parts = []
        for task, mod in (("image_retrieval", "image"), ("video_retrieval", "video")):
            if task in e:
                parts += [(mod, np.asarray(e[task]["vision"])), ("text", np.asarray(e[task]["text"]))]
        xy = PCA(n_components=2).fit_transform(np.concatenate([p for _, p in parts]))
        start = 0
        for mod, p in parts:
            pts = xy[start:start + len(p)]
            start += len(p)
            ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.6, color=MODALITY_COLOURS[mod], label=mod)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def module_graphs(tasks: Sequence[str] = tuple(TASKS)) -> Figure:
    """The module graph of each task with its default path lit (workbench.viz.modular.path_figure)."""
    fig = Figure(figsize=(9, 3.3 * len(tasks)))
    for i, task in enumerate(tasks):
        path_figure(task, ax=fig.add_subplot(len(tasks), 1, i + 1))
    fig.tight_layout()
    return fig


def _short(path: str) -> str:
    abbrev = {"vision": "V", "temporal": "T", "universal": "U", "text": "X", "fusion": "F", "decoder": "D"}
    return "".join(abbrev[m] for m in path.split(" -> "))


def score_vs_cost(paths: Sequence[Mapping]) -> Figure:
    """Each task's score against the FLOPs per item of each valid path (the default path ringed).
    Labels: V vision, T temporal, U universal, X text, F fusion, D decoder."""
    tasks = list(dict.fromkeys(r["task"] for r in paths))
    fig = Figure(figsize=(3.4 * max(len(tasks), 1), 3.3))
    for i, task in enumerate(tasks):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        rs = [r for r in paths if r["task"] == task]
        for r in rs:
            ax.errorbar(r["flops"] / 1e6, r["score"], yerr=r.get("score_std") or 0, fmt="o", capsize=2,
                        color="C3" if r["default"] else "C0", mfc="none" if r["default"] else "C0")
            ax.annotate(_short(r["path"]), (r["flops"] / 1e6, r["score"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("MFLOPs per item", fontsize=8)
        ax.set_ylabel(SCORE_LABELS.get(rs[0]["score_name"], rs[0]["score_name"]), fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


DIRECTION_BARS = (("dir_acc", 0.25, "direction (text scores; trained alone: its head)"),
                  ("sign_acc", 0.5, "sign given the axis"),
                  ("probe_dir_acc", 0.25, "direction from a linear probe on the clip embedding"))


def direction_bars(table: Sequence[Mapping]) -> Figure:
    """Per model: direction accuracy from video-text scores (4-way, chance 0.25; for an encoder trained for
    direction alone, from its head), sign accuracy given the axis (chance 0.5) and, where measured,
    direction from a linear probe on the clip embedding."""
    bars = [b for b in DIRECTION_BARS if any(r.get(b[0]) is not None for r in table)]
    fig = Figure(figsize=(max(7.5, 1.6 * len(table)), 4.2))
    ax = fig.add_subplot(1, 1, 1)
    x, width = np.arange(len(table)), 0.8 / len(bars)
    for j, (metric, chance, what) in enumerate(bars):
        y = [np.nan if r.get(metric) is None else r[metric] for r in table]  # not measured: no bar
        e = [r.get(f"{metric}_std") or 0.0 for r in table]
        ax.bar(x + (j - (len(bars) - 1) / 2) * width, y, width * 0.95, yerr=e, capsize=3, color=f"C{j}",
               label=f"{what} (chance {chance})")
        ax.axhline(chance, color=f"C{j}", ls="--", lw=1)
    ax.set_xticks(x, [textwrap.fill(r["label"], 20) + (f"\nk={r['setting']}" if r.get("setting") is not None else "")
                      for r in table], fontsize=7)
    ax.set(ylim=(0, 1.02), ylabel="accuracy")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def temperature_and_shift(temperature: Sequence[Mapping], shift: Mapping[str, Sequence[Mapping]]) -> Figure:
    """Left: image-text gap and R@1 after fine-tuning at each fixed temperature. Right: the embedding shift --
    contrastive loss (and zero-shot accuracy, dashed) against lambda, per model."""
    fig = Figure(figsize=(10, 3.4))
    ax = fig.add_subplot(1, 2, 1)
    rows = sorted(temperature, key=lambda r: -r["setting"])
    if rows:
        t = [r["setting"] for r in rows]
        ax.errorbar(t, [r["image_l2m"] for r in rows], yerr=[r.get("image_l2m_std") or 0 for r in rows],
                    marker="o", capsize=3, label="gap L2M")
        ax.errorbar(t, [r["image_r1"] for r in rows], yerr=[r.get("image_r1_std") or 0 for r in rows],
                    marker="s", capsize=3, label="R@1")
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set(xlabel="temperature τ (fixed during fine-tuning)", title="temperature sweep")
    ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 2, 2)
    acc = ax.twinx()
    for i, (name, curve) in enumerate(shift.items()):
        lam = [p["lam"] for p in curve]
        ax.plot(lam, [p["loss"] for p in curve], marker="o", color=f"C{i}", label=f"{name}: loss")
        if all(p.get("accuracy") is not None for p in curve):
            acc.plot(lam, [p["accuracy"] for p in curve], ls="--", color=f"C{i}", label=f"{name}: zero-shot acc")
    ax.axvline(0, color="0.6", lw=1)
    ax.set(xlabel="λ (shift along the centroid difference; 1 closes the gap)", ylabel="contrastive loss",
           title="embedding shift")
    acc.set_ylabel("zero-shot accuracy (dashed)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------- explorer
VIEWS = ("one path", "across paths", "across k")


def _target(task: str, data, i: int) -> str:
    s = data.sets[task]
    if task == "qa":
        return f"Q: {s.questions[i]} A: {ANSWERS[int(s.answers[i])]}"
    if task == "classification":
        return ALL_CLASSES[int(s.labels[i])]
    return s.captions[i]


def _media(task: str, data, i: int) -> np.ndarray:
    s = data.sets[task]
    m = s.clips if task == "qa" else (s.images if task == "classification" else s.media)
    x = m[i].detach().cpu().numpy()
    if x.ndim == 4:  # a clip: its frames side by side
        x = np.concatenate(list(x), axis=-1)
    return np.clip(x.transpose(1, 2, 0), 0, 1)


def explorer_png(task: str, path: tuple[str, ...] | None, media: np.ndarray, title: str) -> bytes:
    fig = Figure(figsize=(9, 5.0))
    ax = fig.add_axes((0.02, 0.62, 0.96, 0.33))
    ax.imshow(media)
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    path_figure(task, path=path, ax=fig.add_axes((0.02, 0.0, 0.96, 0.6)))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


class ModuleSelectionExplorer(Explorer):
    """Pick a task (its path lights up) and a sample; see the answer along one path, across every valid path
    (at the paper's k), or along the default path across k."""

    def __init__(self, kept: Mapping[tuple[str, Any], Mapping], data, default_k: Any, n: int):
        import ipywidgets as W

        self.kept, self.data, self.default_k = kept, data, default_k
        self.ks = [s for (m, s) in kept if m == "modular"]
        tasks = [t for t in TASKS if t in data.sets]
        super().__init__({
            "task": W.Dropdown(options=tasks, value=tasks[0], description="task"),
            "sample": W.IntSlider(value=0, min=0, max=max(n - 1, 0), description="sample"),
            "view": W.ToggleButtons(options=VIEWS, value=VIEWS[0], description="compare"),
            "k": W.Dropdown(options=[str(k) for k in self.ks], value=str(default_k) if default_k in self.ks
                            else str(self.ks[0]) if self.ks else None, description="k"),
            "path": W.Dropdown(options=self._paths(tasks[0]), description="path"),
        })
        self.update()

    def _paths(self, task: str) -> list[str]:
        return [" -> ".join(p) for p in valid_paths(task)]

    def update(self, _=None) -> None:
        if self._quiet:
            return
        options = self._paths(self.value("task"))  # a new task: its own valid paths, the default first
        if tuple(self.controls["path"].options) != tuple(options):
            self._quiet = True
            try:
                self.controls["path"].options = options
                self.controls["path"].value = options[0]
            finally:
                self._quiet = False
        super().update()

    def _k(self) -> Any:
        return next((k for k in self.ks if str(k) == self.value("k")), self.default_k)

    def applies(self) -> dict[str, bool]:
        one = self.value("view") == "one path"
        has_paths = self._outputs(self.default_k, self.value("task")) is not None and len(
            self._outputs(self.default_k, self.value("task"))) > 1
        return {"k": one and len(self.ks) > 1, "path": one and self._k() == self.default_k and has_paths}

    def _outputs(self, k: Any, task: str) -> dict | None:
        return self.kept.get(("modular", k), {}).get("outputs", {}).get(task)

    def render(self) -> tuple[bytes, str]:
        v = self.values()
        task, i, view = v["task"], v["sample"], v["view"]
        k = self._k()
        default = " -> ".join(TASKS[task].path)
        path = v["path"] if self.applies()["path"] and v["path"] else default
        rows: list[tuple[str, str]] = []
        if view == "one path":
            out = self._outputs(k, task) or {}
            got = out.get(path) or (out.get("default") if path == default else None)
            rows.append((f"k={k}, {path}", got[i] if got else "not run"))
        elif view == "across paths":
            for name, got in (self._outputs(self.default_k, task) or {}).items():
                if name != "default":
                    rows.append((name + (" (default)" if name == default else ""), got[i]))
        else:
            for kk in self.ks:
                got = (self._outputs(kk, task) or {}).get("default")
                rows.append((f"k={kk}", got[i] if got else "not run"))
        lit = tuple(path.split(" -> "))
        shown = f"k={k}" if view == "one path" else view  # the picture names what the table compares
        png = explorer_png(task, lit, _media(task, self.data, i), f"{task}, sample {i}, {shown}")
        body = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(str(b))}</td></tr>" for a, b in rows)
        text = (f"<b>{html.escape(task)}</b>, sample {i}; target: <i>{html.escape(_target(task, self.data, i))}</i>"
                f"<table><tr><th>model / path</th><th>output</th></tr>{body}</table>")
        return png, text


def explorer(result) -> Any:
    """The study's explorer (an ipywidgets box; a static picture of its first state when run headless)."""
    n = min(len(v) for t in result.kept.get(("modular", result.default_k), {}).get("outputs", {}).values()
            for v in t.values()) if result.kept.get(("modular", result.default_k)) else 1
    return ModuleSelectionExplorer(result.kept, result.data, result.default_k, n).widget
