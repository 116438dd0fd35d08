"""The explorers' shared behaviour, without a browser or a model: controls that do not apply are
disabled, the busy indicator ends on the update's time, models are drawn side by side, and a
headless run (WORKBENCH_STATIC=1) displays a picture of the first state instead of live widgets."""
from __future__ import annotations

import torch

from workbench.viz.cam import CamExplorer
from workbench.viz.explorer import STATIC_ENV

NAMES = ("circle", "square", "star")


class FakeFrames:
    """What CamExplorer needs of `CamFrames`, computed from the controls alone (a model per `bias`)."""

    def __init__(self, bias: float):
        self.images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        self.classnames = NAMES
        self.bias = bias
        self.calls: list[tuple] = []

    def frame(self, index, target, method, kind, threshold, p, fill):
        self.calls.append((index, target, method, kind, threshold, p, fill))
        g = torch.Generator().manual_seed(index * 100 + target + int(100 * threshold) + int(100 * p) + len(fill))
        cam = None if kind == "random" else torch.rand(4, 4, generator=g)
        mask = torch.rand(4, 4, generator=g) > (p if kind == "random" else threshold)
        probs = torch.softmax(torch.rand(2, len(NAMES), generator=g) + self.bias, -1)
        return {"cam": cam, "mask": mask, "counterfactual": self.images[index].flip(-1), "before": probs[0],
                "after": probs[1]}


def explorer() -> CamExplorer:
    return CamExplorer({"zero-shot": FakeFrames(0.0), "FT": FakeFrames(1.0)}, labels=[0, 2, 1], classnames=NAMES,
                       methods=("gradcam", "rollout"))


def test_controls_that_do_not_apply_are_disabled_and_every_model_is_drawn():
    ex = explorer()
    c = ex.controls
    assert not c["method"].disabled and not c["threshold"].disabled and c["p"].disabled
    assert "zero-shot" in ex.info.value and "FT" in ex.info.value and "true class: <b>circle</b>" in ex.info.value
    first = ex.image.value
    c["kind"].value = "random"
    assert c["method"].disabled and c["threshold"].disabled and not c["p"].disabled
    assert ex.image.value != first
    c["kind"].value = "context"
    assert not c["method"].disabled and c["p"].disabled
    assert all(f.calls[-1][3] == "context" for f in ex.frames.values())  # both models drew the same state


def test_the_class_follows_the_image_in_one_redraw_and_the_busy_indicator_ends():
    ex = explorer()
    n = len(ex.seconds)
    ex.controls["index"].value = 1
    assert ex.controls["target"].value == 2 and "true class: <b>star</b>" in ex.info.value
    assert len(ex.seconds) == n + 1  # the class moved quietly: one redraw, not two
    assert "updated in" in ex.status.value and ex.seconds[-1] > 0


def test_headless_display_is_a_picture_of_the_first_state(monkeypatch):
    import IPython.display

    ex = explorer()
    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    monkeypatch.setenv(STATIC_ENV, "1")
    ex.widget._ipython_display_()
    (image,), _ = shown[0]
    (text,), _ = shown[1]
    assert isinstance(image, IPython.display.Image) and image.data == ex.image.value
    assert "true class" in text.data and "JupyterLab" in text.data
    shown.clear()
    monkeypatch.setenv(STATIC_ENV, "")
    ex.widget._ipython_display_()
    (bundle,), kw = shown[0]
    assert kw == {"raw": True} and "application/vnd.jupyter.widget-view+json" in bundle  # live widgets
