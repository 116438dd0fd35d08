"""Pictures of CAMs and counterfactual images (study 1), and an interactive CAM explorer.

Figures are matplotlib `Figure`s made with pyplot (the notebook shows them, `save_figure`
saves them); the explorer draws with a pyplot-free `Figure` into an ipywidgets `Image`, so it
builds and updates in a headless run as well as in JupyterLab. Nothing here computes a CAM or a
fill: the explorer draws the frames that `workbench.methods.cam.CamFrames` computes.
"""
from __future__ import annotations

import io
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .explorer import Explorer

CMAP = "jet"
MASK_COLOR = (1.0, 0.2, 0.6)  # the tint of replaced patches (show_mask)


def _img(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor in [0, 1] -> (H, W, 3) numpy."""
    return t.detach().float().cpu().permute(1, 2, 0).numpy().clip(0, 1)


def _up(cam: torch.Tensor, size: int, mode: str = "bilinear") -> np.ndarray:
    """(h, w) map -> (size, size) numpy; bilinear for heatmaps, nearest for patch masks."""
    x = cam.detach().float().cpu()[None, None]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(x, size=(size, size), mode=mode, **kw)[0, 0].numpy()


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_cam(ax, image: torch.Tensor, cam: torch.Tensor | None, alpha: float = 0.5, title: str | None = None,
             fontsize: float = 7) -> None:
    """Image (3, H, W) with a CAM (h, w) in [0, 1] laid over it as a heatmap."""
    ax.imshow(_img(image), interpolation="nearest")
    if cam is not None:
        ax.imshow(_up(cam, image.shape[-1]), cmap=CMAP, vmin=0, vmax=1, alpha=alpha, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=fontsize)
    _clean(ax)


def show_mask(ax, image: torch.Tensor, mask: torch.Tensor, title: str | None = None, fontsize: float = 7) -> None:
    """Image (3, H, W) with the replaced patches (g, g) bool tinted and outlined."""
    m = _up(mask.float(), image.shape[-1], mode="nearest")
    ax.imshow(_img(image) * (1 - 0.55 * m[..., None]) + 0.55 * m[..., None] * np.array(MASK_COLOR),
              interpolation="nearest")
    ax.contour(m, levels=[0.5], colors="white", linewidths=0.7)
    if title:
        ax.set_title(title, fontsize=fontsize)
    _clean(ax)


def _prediction(probs: torch.Tensor, classnames: Sequence[str]) -> str:
    i = int(probs.argmax())
    return f"{classnames[i]} {float(probs[i]):.2f}"


def cam_gallery(images: torch.Tensor, cams: Mapping[str, torch.Tensor], row_titles: Sequence[str] | None = None,
                alpha: float = 0.5) -> plt.Figure:
    """Rows = images (B, 3, H, W), columns = the image then one heatmap per CAM method.

    `cams` maps a method name to maps (B, h, w) at any resolution (patch grid or pixels).
    """
    if not cams:
        raise ValueError("cams is empty: pass {method name: (B, h, w) maps}")
    B = images.shape[0]
    for name, c in cams.items():
        if c.shape[0] != B:
            raise ValueError(f"cams[{name!r}] has {c.shape[0]} maps (shape {tuple(c.shape)}) for {B} images; "
                             f"accepted: one map per image, ({B}, h, w)")
    cols = 1 + len(cams)
    fig, axes = plt.subplots(B, cols, figsize=(1.5 * cols, 1.55 * B + 0.3), squeeze=False)
    for i in range(B):
        show_cam(axes[i, 0], images[i], None, title=row_titles[i] if row_titles else None)
        for j, (name, c) in enumerate(cams.items(), start=1):
            show_cam(axes[i, j], images[i], c[i], alpha, title=name if i == 0 else None)
    fig.tight_layout()
    return fig


def counterfactual_figure(images: torch.Tensor, counterfactual, probs_before: torch.Tensor,
                          probs_after: torch.Tensor, classnames: Sequence[str],
                          labels: torch.Tensor | Sequence[int] | None = None, n: int = 4) -> plt.Figure:
    """Rows = images; columns = image, CAM, mask, counterfactual, titled with predictions before/after.

    counterfactual: a `workbench.methods.cam.Counterfactual` (images, mask, cam) for `images`;
    probs_*: class probabilities (B, C) on the clean and counterfactual images; labels index classnames.
    """
    n = min(n, images.shape[0])
    fig, axes = plt.subplots(n, 4, figsize=(6.4, 1.7 * n + 0.3), squeeze=False)
    for i in range(n):
        truth = f"true: {classnames[int(labels[i])]}\n" if labels is not None else ""
        show_cam(axes[i, 0], images[i], None, title=f"{truth}pred: {_prediction(probs_before[i], classnames)}")
        cam = counterfactual.cam
        show_cam(axes[i, 1], images[i], cam[i] if cam is not None else None,
                 title="CAM" if cam is not None else "(random mask: no CAM)")
        show_mask(axes[i, 2], images[i], counterfactual.mask[i],
                  title=f"mask ({int(counterfactual.mask[i].sum())} patches)")
        show_cam(axes[i, 3], counterfactual.images[i], None,
                 title=f"after: {_prediction(probs_after[i], classnames)}")
    fig.tight_layout()
    return fig


def photo_masking_figure(results: Sequence) -> plt.Figure:
    """Rows = photos; columns = photo, its CAM, object masked, context masked, each with the
    top-class probability. `results` come from `workbench.methods.cam.real_photo.photo_counterfactuals`."""
    if not results:
        raise ValueError("no photo results to draw")
    fig, axes = plt.subplots(len(results), 4, figsize=(7.2, 1.9 * len(results) + 0.3), squeeze=False)
    for i, r in enumerate(results):
        show_cam(axes[i, 0], r.image, None, title=f"{r.name}: {r.top_class}\np = {r.prob_clean:.2f}")
        show_cam(axes[i, 1], r.image, r.cam, title="Grad-CAM (last conv)")
        show_cam(axes[i, 2], r.object_image, None, title=f"object masked\np = {r.prob_object_masked:.2f}")
        show_cam(axes[i, 3], r.context_image, None, title=f"context masked\np = {r.prob_context_masked:.2f}")
    fig.tight_layout()
    return fig


def _top_bars(ax, before: torch.Tensor, after: torch.Tensor, classnames: Sequence[str], k: int,
              legend: bool = True) -> None:
    """Horizontal bars of the top-k classes (by the clean prediction and the counterfactual's)."""
    idx = list(dict.fromkeys(before.topk(k).indices.tolist() + after.topk(k).indices.tolist()))
    y = np.arange(len(idx))
    ax.barh(y - 0.2, before[idx].cpu().numpy(), height=0.4, label="clean image", color="#4c72b0")
    ax.barh(y + 0.2, after[idx].cpu().numpy(), height=0.4, label="counterfactual", color="#dd8452")
    ax.set_yticks(y, [classnames[i] for i in idx], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("probability", fontsize=7)
    if legend:
        ax.legend(fontsize=6, loc="lower right")


def explorer_png(rows: Mapping[str, dict], image: torch.Tensor, classnames: Sequence[str], title: str = "",
                 top_k: int = 3) -> bytes:
    """One explorer frame as PNG bytes: a row per model (name -> frame with "cam", "mask",
    "counterfactual", "before", "after"; see `workbench.methods.cam.CamFrames.frame`) of its CAM
    heatmap, mask, counterfactual and top predictions before/after; a colour scale for the CAM and
    a key for the mask under the rows."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Patch

    n = len(rows)
    height = 2.25 * n + 0.75
    fig = Figure(figsize=(9.8, height))  # not pyplot: nothing leaks into the notebook's output
    grid = fig.add_gridspec(n + 1, 4, width_ratios=[1, 1, 1, 1.35], height_ratios=[1] * n + [0.12],
                            left=0.04, right=0.98, top=1 - 0.3 / height, bottom=0.35 / height, wspace=0.3,
                            hspace=0.45)  # fixed margins: tight_layout would cost more than the CAMs
    for r, (name, f) in enumerate(rows.items()):
        first = r == 0
        cam_ax = fig.add_subplot(grid[r, 0])
        show_cam(cam_ax, image, f["cam"],
                 title=(title or "CAM") if f["cam"] is not None else "random mask: no CAM", fontsize=8)
        cam_ax.set_ylabel(name, fontsize=9, fontweight="bold")
        show_mask(fig.add_subplot(grid[r, 1]), image, f["mask"],
                  title=f"mask: {int(f['mask'].sum())} of {f['mask'].numel()} patches", fontsize=8)
        show_cam(fig.add_subplot(grid[r, 2]), f["counterfactual"], None,
                 title=f"counterfactual: {_prediction(f['after'], classnames)}", fontsize=8)
        bars = fig.add_subplot(grid[r, 3])
        _top_bars(bars, f["before"], f["after"], classnames, top_k, legend=first)
        if first:
            bars.set_title("top classes", fontsize=8)
    scale = fig.add_subplot(grid[n, 0])
    fig.colorbar(ScalarMappable(Normalize(0, 1), CMAP), cax=scale, orientation="horizontal")
    scale.set_title("CAM (max-normalised): 0 low -> 1 high", fontsize=7)
    scale.tick_params(labelsize=6)
    fig.legend(handles=[Patch(facecolor=MASK_COLOR, edgecolor="white", label="replaced patches (tinted, outlined)")],
               loc="lower center", bbox_to_anchor=(0.45, 0.0), fontsize=7, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


class CamExplorer(Explorer):
    """The controls and drawing behind `cam_explorer`; `.widget` is what the notebook shows.

    `frames` maps a model's name to what computes its frames: `frames[name].frame(index, target,
    method, kind, threshold, p, fill)` returns {"cam", "mask", "counterfactual", "before", "after"}
    and `.images` holds the images (e.g. `workbench.methods.cam.CamFrames`); every model is drawn
    on the same image, a row each. Controls: image (slider), class (dropdown, follows the image's
    label when the image changes), CAM method, mask kind, threshold, random-mask p, fill. The CAM
    method and the threshold are disabled for random masks, p for CAM masks.
    """

    def __init__(self, frames, labels, classnames: Sequence[str] | None = None, methods: Sequence[str] = ("gradcam",),
                 threshold: float = 0.3, kind: str = "object", fill: str = "single", top_k: int = 3,
                 kinds: Sequence[str] = ("object", "context", "random"),
                 fills: Sequence[str] = ("constant", "mean", "single", "multi")):
        import ipywidgets as W

        self.frames = dict(frames) if isinstance(frames, Mapping) else {"model": frames}
        if not self.frames:
            raise ValueError("frames is empty: pass {model name: CamFrames}")
        first = next(iter(self.frames.values()))
        self.images = first.images  # (B, 3, S, S)
        self.classnames = tuple(classnames or first.classnames)
        for name, f in self.frames.items():
            if len(self.classnames) != len(f.classnames):
                raise ValueError(f"{len(self.classnames)} classnames for model {name!r} with {len(f.classnames)} "
                                 "classes; labels and classes index the classifiers' heads")
            if f.images.shape != self.images.shape:
                raise ValueError(f"model {name!r} sees images of shape {tuple(f.images.shape)}, the first model "
                                 f"{tuple(self.images.shape)}: the models are compared on the same images")
        methods = tuple(methods)
        self.labels = [int(y) for y in labels]
        if len(self.labels) != self.images.shape[0]:
            raise ValueError(f"{len(self.labels)} labels for {self.images.shape[0]} images")
        self.top_k = top_k
        style = {"description_width": "70px"}
        super().__init__({
            "index": W.IntSlider(0, 0, len(self.labels) - 1, description="image", continuous_update=False, style=style),
            "target": W.Dropdown(options=[(c, i) for i, c in enumerate(self.classnames)], value=self.labels[0],
                                 description="class", style=style),
            "method": W.Dropdown(options=list(methods), value=methods[0], description="CAM", style=style),
            "kind": W.Dropdown(options=list(kinds), value=kind, description="mask", style=style),
            "threshold": W.FloatSlider(value=threshold, min=0.05, max=0.95, step=0.05, description="threshold",
                                       continuous_update=False, style=style),
            "p": W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="random p",
                               continuous_update=False, style=style),
            "fill": W.Dropdown(options=list(fills), value=fill, description="fill", style=style),
        })
        self.update()

    def layout(self) -> list:
        import ipywidgets as W

        c = self.controls
        return [W.HBox([c["index"], c["target"], c["method"]]), W.HBox([c["kind"], c["threshold"], c["p"], c["fill"]]),
                self.status, self.image, self.info]

    def applies(self) -> dict[str, bool]:
        cam_mask = self.value("kind") != "random"
        return {"method": cam_mask, "threshold": cam_mask, "p": not cam_mask}

    def update(self, change=None) -> None:
        if change is not None and change.get("owner") is self.controls["index"]:
            self.set_quietly("target", self.labels[change["new"]])  # follow the new image's label
        super().update(change)

    def frame(self) -> dict[str, dict]:
        """Every model's frame of the current control values (computed by `frames`)."""
        v = self.values()
        return {name: f.frame(v["index"], v["target"], v["method"], v["kind"], v["threshold"], v["p"], v["fill"])
                for name, f in self.frames.items()}

    def render(self) -> tuple[bytes, str]:
        rows = self.frame()
        v = self.values()
        t = int(v["target"])
        title = f"{v['method']} CAM of '{self.classnames[t]}'"
        png = explorer_png(rows, self.images[v["index"]], self.classnames, title, self.top_k)
        probs = "; ".join(f"{name} {float(f['before'][t]):.3f} &rarr; {float(f['after'][t]):.3f}"
                          for name, f in rows.items())
        text = (f"true class: <b>{self.classnames[self.labels[v['index']]]}</b> &middot; p({self.classnames[t]}) "
                f"clean &rarr; counterfactual: {probs}")
        return png, text


def cam_explorer(classifier, images: torch.Tensor, labels, classnames: Sequence[str] | None = None,
                 methods: Sequence[str] | None = None, threshold: float = 0.3, kind: str = "object",
                 fill: str = "single", seed: int = 0, top_k: int = 3):
    """An ipywidgets CAM explorer over `images` (B, 3, H, W) with `labels` (B,) indexing `classnames`
    (default: the classifier's). Returns the widget box; its `.explorer` holds the state.

    `classifier`: one classifier, or {name: classifier} to compare models (zero-shot, FT, masked
    distillation) side by side on the same image. The frames are computed by
    `workbench.methods.cam.CamFrames(classifier, images, seed)`, one per model.
    """
    from workbench.methods.cam import ALL_CAM_METHODS, FILLS, MASK_KINDS, CamFrames, check_method

    methods = tuple(methods or ALL_CAM_METHODS)
    for m in methods:
        check_method(m)
    models = dict(classifier) if isinstance(classifier, Mapping) else {"model": classifier}
    if not models:
        raise ValueError("classifier is an empty mapping: pass a classifier or {name: classifier}")
    frames = {name: CamFrames(c, images, seed=seed) for name, c in models.items()}
    return CamExplorer(frames, labels, classnames, methods, threshold, kind, fill, top_k, kinds=MASK_KINDS,
                       fills=FILLS).widget
