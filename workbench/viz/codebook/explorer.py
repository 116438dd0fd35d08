"""The codebook explorer: ipywidgets over a `CodebookView` (checkpoint, code, sequence, exemplars)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..explorer import Explorer
from .base import _inches, _png
from .exemplars import exemplar_rows
from .stats import codebook_stats
from .timeline import draw_timeline
from .usage import draw_code_usage, draw_ranked_usage
from .view import CodebookView


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
        draw_ranked_usage(ax_u, u, v["code"], view.modalities)
        ax_u.set_title(f"step {view.steps[v['checkpoint']]}: perplexity " + ", ".join(
            f"{m} {p:.0f}" for m, p in zip(view.modalities, stats.perplexity)) +
            f"\n{stats.used} codes used, {100 * stats.shared_two:.0f}% by >= 2 modalities"
            + (f", {100 * stats.shared_all:.0f}% by all" if len(view.modalities) > 2 else ""), fontsize=8)
        draw_code_usage(ax_c, u, v["code"], view.modalities, tuple(view.classes) + ("background",))
        if rows:
            exemplar_rows(fig, v["code"], view.codes[v["checkpoint"]], view.exemplars, shown, k, row_h)
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

