"""What every explorer shares: a busy indicator, controls that grey out when they do not apply, a
static picture of the first state in a headless run, and the time each update took.

An explorer is an `ExplorerBox` (an ipywidgets VBox, so it displays as one) whose `.explorer`
draws: subclass `Explorer`, give it `controls` (name -> widget), and implement `render()` ->
(PNG bytes, HTML text) for the current control values; optionally `applies()` -> {control name:
bool} to disable the controls that do not apply. Every change of a control calls `update()`,
which shows "computing..." while it renders and "updated in 0.21 s" after it.

    class MyExplorer(Explorer):
        def __init__(self, data):
            self.data = data
            super().__init__({"index": W.IntSlider(0, 0, 9, description="index")})
        def render(self):
            return png_of(self.data[self.value("index")]), f"item {self.value('index')}"
    display(MyExplorer(data).widget)

When the runner executes a notebook (`workbench run`, env WORKBENCH_STATIC=1) nobody can move a
control: displaying the box then shows the first state as a picture and its text, so the
executed notebook and its HTML read well; in JupyterLab the same cell shows the live widgets.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping

STATIC_ENV = "WORKBENCH_STATIC"  # set by `workbench run`: no live widget will ever show


def static_outputs() -> bool:
    """True when nobody will see live widgets (a notebook executed by `workbench run`)."""
    return os.environ.get(STATIC_ENV, "") not in ("", "0")


BUSY = "<span style='color:#b35900'>&#9203; computing&hellip;</span>"


def _box_class():
    import ipywidgets as W

    class ExplorerBox(W.VBox):
        """A VBox that shows a static picture of its explorer's state when `static_outputs()`."""

        def _ipython_display_(self, **kwargs) -> None:
            from IPython.display import HTML, Image, display

            ex = getattr(self, "explorer", None)
            if ex is None or not static_outputs():
                display(self._repr_mimebundle_(**kwargs), raw=True)
                return
            display(Image(data=ex.image.value, format="png"))
            display(HTML(f"{ex.info.value}<br><i>A static picture of the explorer's first state (the notebook "
                         "ran headless); run this cell in JupyterLab to move its controls.</i>"))

    return ExplorerBox


class Explorer:
    """Controls -> `render()` -> picture + text, with a busy indicator and per-update timings.

    Subclasses set `self.controls` (via `__init__`) and implement `render()`; `layout()` may
    arrange the controls (default: one row each of at most four). `seconds` lists every update's
    render time (the latency a user waits for).
    """

    def __init__(self, controls: Mapping[str, Any], image_width: int | None = None):
        import ipywidgets as W

        self.controls = dict(controls)
        self.image = W.Image(format="png", **({"width": image_width} if image_width else {}))
        self.info = W.HTML()
        self.status = W.HTML()
        for w, css in ((self.image, "wb-image"), (self.info, "wb-info"), (self.status, "wb-status")):
            w.add_class(css)  # what a browser test finds them by
        self.seconds: list[float] = []
        self._quiet = False
        self.widget = _box_class()(self.layout())
        self.widget.explorer = self
        for control in self.controls.values():
            control.observe(self.update, names="value")

    def layout(self) -> list:
        import ipywidgets as W

        c = list(self.controls.values())
        rows = [W.HBox(c[i:i + 4]) for i in range(0, len(c), 4)]
        return [*rows, self.status, self.image, self.info]

    def value(self, name: str) -> Any:
        return self.controls[name].value

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def render(self) -> tuple[bytes, str]:
        """(PNG bytes, HTML text) of the current control values."""
        raise NotImplementedError

    def applies(self) -> dict[str, bool]:
        """Which controls matter for the current values (others are disabled); default: all."""
        return {}

    def set_quietly(self, name: str, value: Any) -> None:
        """Change a control without a redraw of its own (when another control's change moves it)."""
        self._quiet = True
        try:
            self.controls[name].value = value
        finally:
            self._quiet = False

    def update(self, _=None) -> None:
        if self._quiet:
            return
        for name, on in self.applies().items():
            self.controls[name].disabled = not on
        self.status.value = BUSY
        t0 = time.perf_counter()
        try:
            png, text = self.render()
        except Exception as e:  # keep the explorer usable and say what went wrong
            self.status.value = f"<span style='color:#b00020'>failed: {type(e).__name__}: {e}</span>"
            raise
        self.image.value, self.info.value = png, text
        self.seconds.append(time.perf_counter() - t0)
        self.status.value = f"<span style='color:#197a19'>updated in {self.seconds[-1]:.2f} s</span>"
