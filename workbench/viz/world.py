"""Pictures of the world and of a model's zero-shot accuracy on it (study 00).

Every function returns a matplotlib `Figure` (the notebook shows it and saves it with
`save_figure`); `browser` returns an ipywidgets box for JupyterLab.
"""
from __future__ import annotations

import io
import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import mlab
from matplotlib.figure import Figure

from workbench.checks import check_number
from workbench.world import CONTEXT_NAMES, SPLITS, World, texture_bank

from .explorer import Explorer

DIRECTION_ARROWS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1)}  # image coords


def _img(t) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) numpy for imshow."""
    return t.detach().cpu().permute(1, 2, 0).numpy().clip(0, 1)


def check_rows(rows, name: str = "table", nonempty: bool = True) -> list:
    """`rows` (a sequence of dicts, one per table row) as a list, or an error naming `name`: one dict (or a string)
    is not a table, and a picture of no rows shows nothing (`nonempty`)."""
    if isinstance(rows, (Mapping, str, bytes)) or not isinstance(rows, Sequence):
        raise TypeError(f"{name}={rows!r:.80} is a {type(rows).__name__}; accepted: a sequence of rows (dicts)")
    rows = list(rows)
    bad = [r for r in rows if not isinstance(r, Mapping)]
    if bad:
        raise TypeError(f"{name} holds {bad[0]!r:.60} ({type(bad[0]).__name__}); accepted: rows as dicts")
    if nonempty and not rows:
        raise ValueError(f"{name} is empty; accepted: at least one row")
    return rows


def _check_values(values: Mapping, name: str, low: float = 0.0, high: float = 1.0) -> list[float]:
    """The values of `values` (split or class -> number), each a finite number in [low, high]."""
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{name}={values!r:.80}; accepted: a non-empty dict name -> number in [{low:g}, {high:g}]")
    return [check_number(v, f"{name}[{k!r}]", ge=low, le=high) for k, v in values.items()]


def _check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    if isinstance(splits, str):
        splits = (splits,)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ValueError(f"unknown split(s) {bad}; the world has: {', '.join(SPLITS)}")
    return tuple(splits)


def show_scene(ax, image, mask=None, mask_style: str = "contour", title: str | None = None,
               fontsize: float = 6.5) -> None:
    """Draw one scene (3, H, W) on `ax`, with its ground-truth mask (H, W) as a contour or overlay."""
    if mask_style not in ("contour", "overlay", "none"):
        raise ValueError(f"mask_style={mask_style!r}; accepted: 'contour', 'overlay', 'none'")
    ax.imshow(_img(image), interpolation="nearest")
    if mask is not None and mask_style != "none":
        m = mask.detach().cpu().numpy().astype(float)
        if mask_style == "contour":
            ax.contour(m, levels=[0.5], colors="#00e5ff", linewidths=0.9)
        else:
            rgba = np.zeros((*m.shape, 4))
            rgba[..., 1] = 1.0
            rgba[..., 3] = 0.45 * m
            ax.imshow(rgba, interpolation="nearest")
    if title:
        ax.set_title("\n".join(textwrap.wrap(title, 22)), fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(world: World, splits: Sequence[str] = tuple(SPLITS), n: int = 6, start: int = 0,
                step: int = 11, mask_style: str = "contour") -> Figure:
    """Rows = splits, columns = samples `start, start+step, ...`; mask contour, caption as title.

    Labels cycle with the index, so with step 11 a column shows one class in every 10-class
    split, while the 14-class `novel_*` rows also show novel classes.
    """
    splits = _check_splits(splits)
    n = check_number(n, "n", integer=True, ge=1)
    step = check_number(step, "step", integer=True, ge=1)
    start = check_number(start, "start", integer=True, ge=0)
    fig, axes = plt.subplots(len(splits), n, figsize=(1.45 * n + 0.9, 1.75 * len(splits) + 0.35), squeeze=False,
                             layout="constrained")  # constrained: the suptitle gets its own room above row 1
    for r, split in enumerate(splits):
        b = world.batch(split, range(start, start + n * step, step))
        for c in range(n):
            show_scene(axes[r, c], b.images[c], b.masks[c], mask_style, b.captions[c])
        axes[r, 0].set_ylabel(split, fontsize=9, rotation=90)
    fig.suptitle("the world, split by split (cyan: ground-truth object mask; title: caption)", fontsize=10)
    return fig


def _crop_to_mask(mask: np.ndarray, margin: int = 2) -> np.ndarray:
    """The (H, W) mask cut to its bounding box plus a margin, so small objects fill the panel."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask
    y0, x0 = max(ys.min() - margin, 0), max(xs.min() - margin, 0)
    return mask[y0:ys.max() + margin + 1, x0:xs.max() + margin + 1]


def class_and_context_gallery(world: World) -> Figure:
    """Top: one example of each of the 14 classes (novel ones marked); bottom: the context textures."""
    classes = world.split_classes("novel_train")  # all 14 classes, label = index % 14
    b = world.batch("novel_train", range(len(classes)))
    bank = texture_bank(2 * world.config.image_size)  # (n_contexts, 3, 2S, 2S): what scenes crop from
    cols = max(len(classes), len(CONTEXT_NAMES))
    fig, axes = plt.subplots(2, cols, figsize=(1.0 * cols, 2.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(len(classes)):
        name = World.classes[int(b.labels[i])]
        novel = name in world.novel_classes
        axes[0, i].imshow(_crop_to_mask(b.masks[i].numpy()), cmap="Oranges" if novel else "gray_r",
                          interpolation="nearest")
        axes[0, i].set_title(name + (" *" if novel else ""), fontsize=7)
    for j, name in enumerate(CONTEXT_NAMES):
        axes[1, j].imshow(_img(bank[j]), interpolation="nearest")
        axes[1, j].set_title(name, fontsize=7)
    fig.suptitle("classes (* = novel: never seen in pretraining) and contexts", fontsize=10)
    fig.tight_layout()
    return fig


def clip_strip(world: World, split: str = "pretrain", indices: Sequence[int] = (0, 1, 2), frames: int = 8,
               ) -> Figure:
    """Frames of a few clips (rows), with the motion direction drawn as an arrow on the last frame."""
    _check_splits(split)
    if isinstance(indices, (str, bytes)) or not len(indices):
        raise ValueError(f"indices={indices!r}; accepted: at least one clip index, e.g. (0, 1, 2)")
    c = world.clips(split, list(indices), frames=frames)
    fig, axes = plt.subplots(len(c), frames, figsize=(1.1 * frames, 1.35 * len(c)), squeeze=False)
    S = c.frames.shape[-1]
    for r in range(len(c)):
        direction = world.directions[int(c.direction[r])]
        for t in range(frames):
            show_scene(axes[r, t], c.frames[r, t], c.masks[r, t], "contour" if t == 0 else "none")
        dx, dy = DIRECTION_ARROWS[direction]
        axes[r, -1].annotate("", xy=(S / 2 + 0.3 * S * dx, S / 2 + 0.3 * S * dy),
                             xytext=(S / 2 - 0.3 * S * dx, S / 2 - 0.3 * S * dy),
                             arrowprops=dict(arrowstyle="->", color="yellow", lw=2))
        axes[r, 0].set_ylabel(direction, fontsize=8)
        axes[r, 0].set_title(c.captions[r], fontsize=7, loc="left")
    fig.suptitle(f"clips from {split}: frames left to right, arrow = motion direction (the clip's label)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def _find_index(world: World, split: str, cls: str, ctx: str, search: int = 4000) -> int:
    lat = world.latents(split, range(search))
    hit = ((lat.label == World.classes.index(cls)) & (lat.context == CONTEXT_NAMES.index(ctx))).nonzero()
    if len(hit) == 0:
        raise ValueError(f"no {cls!r} on {ctx!r} among the first {search} samples of split {split!r}")
    return int(hit[0, 0])


def sounds_figure(world: World, classes: Sequence[str] = ("circle", "star", "arrow"),
                  contexts: Sequence[str] = ("sand", "space"), split: str = "heldout", length: int = 1024,
                  ) -> Figure:
    """Each class (rows) on two contexts: waveforms, spectrograms, and both spectra overlaid.

    The class sets the harmonic peaks (shared across a row); the context adds a noise band
    (the bump that moves between the two contexts).
    """
    _check_splits(split)
    if len(contexts) != 2:
        raise ValueError(f"contexts={contexts!r}: give exactly two contexts to compare")
    for name, pool in (("class", world.split_classes(split)), ("context", CONTEXT_NAMES)):
        bad = [x for x in (classes if name == "class" else contexts) if x not in pool]
        if bad:
            raise ValueError(f"unknown {name}(s) {bad} for split {split!r}; accepted: {', '.join(pool)}")
    fig, axes = plt.subplots(len(classes), 5, figsize=(14, 2.0 * len(classes) + 0.5), squeeze=False,
                             layout="constrained")
    colors = ("tab:blue", "tab:red")
    rate = length  # a sound is one second long: `length` samples per second
    waves = [world.sounds(split, [_find_index(world, split, cls, ctx) for ctx in contexts], length=length).numpy()
             for cls in classes]  # (2, L) per class
    db = [10 * np.log10(mlab.specgram(w, NFFT=128, Fs=rate, noverlap=112)[0] + 1e-12) for ws in waves for w in ws]
    vmax = max(float(d.max()) for d in db)
    scale = dict(vmin=vmax - 80, vmax=vmax)  # one colour scale for every spectrogram (the colour bar's)
    for r, cls in enumerate(classes):
        wave = waves[r]
        for k, ctx in enumerate(contexts):
            axes[r, k].plot(np.arange(length) / rate, wave[k], lw=0.5, color=colors[k])
            axes[r, k].set_title(f"{cls} on {ctx}: waveform", fontsize=8)
            axes[r, k].set_ylabel("amplitude (a.u.)", fontsize=7)
            *_, im = axes[r, 2 + k].specgram(wave[k], NFFT=128, Fs=rate, noverlap=112, cmap="magma", **scale)
            axes[r, 2 + k].set_title(f"{cls} on {ctx}: spectrogram", fontsize=8)
            axes[r, 2 + k].set_ylabel("frequency (Hz)", fontsize=7)
            spec = np.abs(np.fft.rfft(wave[k]))
            axes[r, 4].semilogy(np.fft.rfftfreq(length, 1 / rate), spec + 1e-3, lw=0.7, color=colors[k],
                                label=ctx)
        axes[r, 4].set_title(f"{cls}: spectrum (harmonics = class, bump = context)", fontsize=8)
        axes[r, 4].set_ylabel("|FFT| (a.u., log)", fontsize=7)
        axes[r, 4].legend(fontsize=7)
    fig.colorbar(im, ax=axes[:, 3], label="power (dB, all spectrograms)", fraction=0.06, pad=0.02)
    for k in range(4):
        axes[-1, k].set_xlabel("time (s)", fontsize=8)
    axes[-1, 4].set_xlabel("frequency (Hz)", fontsize=8)
    fig.suptitle(f"the sound of a scene: one second at {rate} samples/s; class = harmonic peaks, context = noise "
                 "band", fontsize=9)
    return fig


def accuracy_bars(accuracy: Mapping[str, float], chance: Mapping[str, float] | float | None = None,
                  reference: Mapping[str, float] | None = None, title: str = "zero-shot accuracy",
                  ) -> Figure:
    """Bars of accuracy per split, the chance level, and (if given) reference numbers as markers."""
    vals = _check_values(accuracy, "accuracy")
    splits = list(accuracy)
    fig, ax = plt.subplots(figsize=(1.2 * len(splits) + 1.5, 3.2))
    in_dist = ("pretrain", "heldout", "finetune", "id_test")  # blue: what the model was made for
    bars = ax.bar(splits, vals, color=["tab:blue" if s in in_dist else "tab:orange" for s in splits])
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in vals], fontsize=8)
    if chance is not None:
        levels = [chance] * len(splits) if isinstance(chance, (int, float)) else [chance[s] for s in splits]
        if len(set(levels)) == 1:
            ax.axhline(levels[0], color="gray", ls="--", lw=1, label=f"chance ({levels[0]:.2f})")
        else:
            ax.hlines(levels, np.arange(len(splits)) - 0.45, np.arange(len(splits)) + 0.45, color="gray",
                      ls="--", lw=1, label="chance")
    if reference:
        xs = [i for i, s in enumerate(splits) if s in reference]
        ax.scatter(xs, [reference[splits[i]] for i in xs], marker="_", s=600, color="black", zorder=3,
                   label="shipped metrics.json")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("top-1 accuracy")
    ax.set_title(title, fontsize=10)
    if chance is not None or reference:
        ax.legend(fontsize=8, loc="upper right")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def per_class_bars(per_class: Mapping[str, float], chance: float | None = None,
                   title: str = "per-class accuracy (heldout)") -> Figure:
    _check_values(per_class, "per_class")
    fig, ax = plt.subplots(figsize=(6, 2.8))
    names = list(per_class)
    ax.bar(names, [per_class[c] for c in names], color="tab:green")
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8, rotation=45)
    fig.tight_layout()
    return fig


def confusion_figure(counts, classnames: Sequence[str], title: str = "confusion on ood_flipped") -> Figure:
    """Row-normalised confusion matrix (rows = true class, columns = predicted), counts in cells."""
    m = np.asarray(counts.tolist() if hasattr(counts, "tolist") else counts, dtype=float)  # (C, C)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(classnames):
        raise ValueError(f"counts of shape {m.shape} do not fit {len(classnames)} class names; accepted: a (C, C) "
                         f"matrix for C={len(classnames)} class names")
    bad = int((~np.isfinite(m)).sum())
    if bad or m.min() < 0:
        what = (f"{bad} non-finite values (first: {m[~np.isfinite(m)][0]:g})" if bad else
                f"negative counts (down to {m.min():g})")
        raise ValueError(f"counts hold {what}; accepted: finite counts >= 0")
    rows = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.45 * len(classnames) + 2, 0.45 * len(classnames) + 1.2))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classnames)):
        for j in range(len(classnames)):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classnames)), classnames, rotation=60, fontsize=7)
    ax.set_yticks(range(len(classnames)), classnames, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the row")
    fig.tight_layout()
    return fig


def scene_png(world: World, split: str, index: int, mask_style: str = "contour", size: float = 3.0) -> bytes:
    """One scene rendered to PNG bytes (what the browser widget shows)."""
    b = world.batch(split, [index])
    fig = Figure(figsize=(size, size))  # not pyplot: no figure leaks into the notebook's output
    ax = fig.add_subplot()
    show_scene(ax, b.images[0], b.masks[0], mask_style)
    fig.tight_layout(pad=0.1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _describe(world: World, split: str, index: int) -> str:
    b = world.batch(split, [index])
    return (f"<b>{split}[{index}]</b>: class <b>{World.classes[int(b.labels[0])]}</b>, context "
            f"<b>{world.contexts[int(b.contexts[0])]}</b>, colour {world.colors[int(b.colors[0])]}, "
            f"{'sketch' if bool(b.sketch[0]) else 'photo'}<br><i>{b.captions[0]}</i>")


class WorldBrowser(Explorer):
    """Split dropdown, index slider, mask toggle -> the scene and its description."""

    def __init__(self, world: World, splits: Sequence[str], max_index: int):
        import ipywidgets as W

        self.world = world
        super().__init__({
            "split": W.Dropdown(options=list(splits), value=splits[0], description="split"),
            "index": W.IntSlider(value=0, min=0, max=max_index, description="index", continuous_update=False),
            "mask": W.ToggleButtons(options=["contour", "overlay", "none"], value="contour", description="mask")})
        self.image.width = self.image.height = 256
        self.update()

    def layout(self) -> list:
        import ipywidgets as W

        c = self.controls
        return [W.HBox([c["split"], c["index"]]), c["mask"], W.HBox([self.image, self.info]), self.status]

    def render(self) -> tuple[bytes, str]:
        v = self.values()
        return scene_png(self.world, v["split"], v["index"], v["mask"]), _describe(self.world, v["split"], v["index"])


def browser(world: World, splits: Sequence[str] = tuple(SPLITS), max_index: int = 999):
    """An ipywidgets browser: split dropdown, index slider, mask toggle. Returns the widget box (its
    `.explorer` holds the state); headless it displays as a picture of split[0], index 0."""
    max_index = check_number(max_index, "max_index", integer=True, ge=0)
    return WorldBrowser(world, _check_splits(splits), max_index).widget


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None, digits: int = 3) -> str:
    """Rows of dicts -> a Markdown table (floats rounded, None shown as '-'); for `display(Markdown(...))`."""
    rows = check_rows(rows, "rows", nonempty=False)
    digits = check_number(digits, "digits", integer=True, ge=0)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v) -> str:
        if v is None:
            return "-"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows])
