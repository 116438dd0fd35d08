"""The ipywidgets explorers work in a real JupyterLab, driven like a user by a headless chromium.

A small notebook written at test time shows the world browser (`workbench.viz.world.browser`)
and the CAM explorer (`workbench.viz.cam.cam_explorer`) on a random-init tiny-world-clip. The
test runs it with the menu (Run > Run All Cells), then moves sliders with the keyboard, picks
dropdown options and clicks a toggle button, and checks that the kernel redrew the outputs:
texts name the new sample, and the world browser's picture equals `scene_png` for that sample.

Needs the `ui` extra (playwright) and Debian's /usr/bin/chromium; skips cleanly without them:
    pip install -e '.[ui]' && apt-get install chromium   # never `playwright install` (offline)
    WORKBENCH_UI_SHOTS=/tmp/ui_shots pytest tests/test_jupyterlab_ui.py -s   # -s shows the timings
Screenshots go to $WORKBENCH_UI_SHOTS (or the test's tmp folder).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.ui_helpers import REPO, headless_chromium, image_bytes, jupyter_lab, kernel_ready, missing_tools

MISSING = missing_tools()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=f"UI test skipped: {MISSING}")]

NOTEBOOK = "ui_explorers.ipynb"
WORLD_SPLITS = ("pretrain", "ood_flipped")
CAM_SPLIT, CAM_N = "id_test", 3
WAIT = 90.0  # seconds for any one UI step; the machine may be busy
CELLS = [
    f"""import torch
from IPython.display import display
from workbench.world import World
from workbench.viz.world import browser

world = World()
display(browser(world, splits={WORLD_SPLITS!r}, max_index=20))""",
    f"""from workbench.models import ImageClassifier, build_tiny
from workbench.viz.cam import cam_explorer
from workbench.world import zero_shot_templates

torch.manual_seed(0)
backend = build_tiny().eval()  # random init: the explorer's mechanics, not a trained model
names = world.split_classes({CAM_SPLIT!r})
classifier = ImageClassifier(backend, backend.zero_shot_head(names, zero_shot_templates())).eval()
scenes = world.batch({CAM_SPLIT!r}, range({CAM_N}))
labels = [names.index(World.classes[int(y)]) for y in scenes.labels]
display(cam_explorer(classifier, scenes.images, labels, methods=("gradcam", "rollout")))""",
]


T0 = time.monotonic()
CONSOLE: list[str] = []  # the browser's console, printed when the test fails


def log(msg: str) -> None:
    """Progress on stdout (seen with -s): where the time goes on a busy machine."""
    print(f"[ui {time.monotonic() - T0:6.1f} s] {msg}", flush=True)


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("UI check written by `tests/test_jupyterlab_ui.py`.")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in CELLS]
    nbformat.write(nb, path)


def wait_for(check: Callable[[], object], what: str, timeout: float = WAIT):
    """Poll `check` until it returns something truthy; fail naming `what` and the last value seen."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last!r}")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("WORKBENCH_UI_SHOTS") or tmp_path_factory.mktemp("ui_shots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("jupyterlab")
    root = work / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    write_notebook(root / NOTEBOOK)
    log("starting jupyter lab")
    with jupyter_lab(root, work) as server:
        log(f"jupyter lab answers at {server.url}")
        yield server
    log("jupyter lab stopped")


@pytest.fixture(scope="module")
def lab_page(lab, tmp_path_factory):
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile"), viewport=(1500, 1300)) as context:
        log("chromium started")
        page = context.new_page()
        page.set_default_timeout(WAIT * 1000)
        page.on("console", lambda m: CONSOLE.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: CONSOLE.append(f"page error: {e}"))
        yield page


def run_all_cells(page, lab) -> None:
    """Open the notebook, wait for its kernel, run it from the menu and wait for both outputs.

    On a loaded machine JupyterLab has asked for a kernel (chooser dialog) or dropped a Run All
    pressed right after the kernel came up: the chooser is accepted and Run All pressed again.
    """
    log("opening the notebook")
    page.goto(lab.lab_url(NOTEBOOK))
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
    chooser = page.locator(".jp-Dialog", has_text="Select Kernel")
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt")
    started = lambda: any(t.strip() not in ("", "[ ]:") for t in prompts.all_inner_texts())
    for attempt in range(3):
        log("waiting for the kernel")
        wait_for(lambda: kernel_ready(page) or chooser.count() > 0, "a connected idle kernel (or the chooser)")
        if chooser.count():
            log("kernel chooser shown; accepting Python 3")
            chooser.locator(".jp-mod-accept").click()
            continue
        log("kernel idle; Run > Run All Cells")
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: started() or chooser.count() > 0, "the cells to start", timeout=20)
        if started():
            break
        log("the cells did not start; trying again")
    else:
        raise AssertionError("Run All Cells never started the cells; see failure.png")
    done = lambda: all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in prompts.all_inner_texts())
    wait_for(done, "both cells to finish ([n]: prompts)", timeout=2 * WAIT)
    log("cells done")
    tracebacks = [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "Traceback" in t]
    assert not tracebacks, f"the notebook raised:\n{tracebacks[0][-2000:]}"


def slider_step(page, output, label: str, presses: int) -> None:
    """Focus the handle of the slider described `label` and press the right arrow `presses` times."""
    slider = output.locator(".widget-slider", has=page.locator(".widget-label", has_text=label))
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")


def dropdown(output, page, label: str):
    return output.locator(".widget-dropdown", has=page.locator(".widget-label", has_text=label)).locator("select")


def check_world_browser(page, out, shots: Path) -> None:
    from workbench.viz.world import scene_png
    from workbench.world import World

    world = World()
    info, img = out.locator(".widget-html-content").first, out.locator("img").first
    caption = world.batch(WORLD_SPLITS[0], [0]).captions[0]
    wait_for(lambda: f"{WORLD_SPLITS[0]}[0]" in info.inner_text() and caption in info.inner_text(),
             "the world browser's first description")
    first = wait_for(lambda: image_bytes(img), "the world browser's first picture")
    assert first == scene_png(world, WORLD_SPLITS[0], 0, "contour"), "first picture is not pretrain[0]"
    out.screenshot(path=str(shots / "world_browser_before.png"))

    steps = [  # (what the user does, split, index, mask style after it)
        (lambda: slider_step(page, out, "index", 3), WORLD_SPLITS[0], 3, "contour"),
        (lambda: dropdown(out, page, "split").select_option(WORLD_SPLITS[1]), WORLD_SPLITS[1], 3, "contour"),
        (lambda: out.locator(".widget-toggle-buttons button", has_text="overlay").click(),
         WORLD_SPLITS[1], 3, "overlay"),
    ]
    seen = [first]
    for act, split, index, style in steps:
        act()
        want = scene_png(world, split, index, style)
        text = f"{split}[{index}]"
        caption = world.batch(split, [index]).captions[0]
        wait_for(lambda: text in info.inner_text() and caption in info.inner_text(), f"the text {text!r}")
        wait_for(lambda: image_bytes(img) == want, f"the picture of {text} with mask {style!r}")
        assert want not in seen, f"{text} {style} draws like an earlier state: the check could not fail"
        seen.append(want)
    out.screenshot(path=str(shots / "world_browser_after.png"))


def check_cam_explorer(page, out, shots: Path) -> None:
    from workbench.world import World

    world = World()
    names = world.split_classes(CAM_SPLIT)
    truth = [World.classes[int(y)] for y in world.batch(CAM_SPLIT, range(CAM_N)).labels]
    info, img = out.locator(".widget-html-content").first, out.locator("img").first
    cls, method = dropdown(out, page, "class"), dropdown(out, page, "CAM")
    selected = "s => s.options[s.selectedIndex].text"
    wait_for(lambda: f"true class: {truth[0]}" in info.inner_text(), "the explorer's first description")
    assert cls.evaluate(selected) == truth[0] and truth[0] in names
    first = wait_for(lambda: image_bytes(img), "the explorer's first frame")
    out.screenshot(path=str(shots / "cam_explorer_before.png"))

    slider_step(page, out, "image", 1)  # image 1: the class dropdown follows its label
    wait_for(lambda: f"true class: {truth[1]}" in info.inner_text(), f"'true class: {truth[1]}'")
    wait_for(lambda: cls.evaluate(selected) == truth[1], f"the class dropdown to follow to {truth[1]!r}")
    second = wait_for(lambda: (b := image_bytes(img)) != first and b, "a new frame for image 1")
    out.screenshot(path=str(shots / "cam_explorer_image1.png"))

    assert method.evaluate(selected) == "gradcam"
    method.select_option("rollout")
    wait_for(lambda: image_bytes(img) not in (first, second), "a new frame for the rollout CAM")
    wait_for(lambda: f"true class: {truth[1]}" in info.inner_text(), "the description to stay on image 1")
    out.screenshot(path=str(shots / "cam_explorer_after.png"))


def test_explorers_respond_in_jupyterlab(lab, lab_page, shots):
    page = lab_page
    t0 = time.monotonic()
    try:
        run_all_cells(page, lab)
        outputs = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-OutputArea")
        world_out, cam_out = outputs.nth(0), outputs.nth(1)
        for out, what in ((world_out, "world browser"), (cam_out, "CAM explorer")):
            wait_for(lambda: out.locator(".jupyter-widgets.widget-slider").count() > 0
                     and out.locator(".widget-dropdown select").count() > 0, f"the {what}'s widgets")
        page.screenshot(path=str(shots / "lab_before.png"), full_page=True)
        log("widgets rendered; driving the world browser")
        check_world_browser(page, world_out, shots)
        log("world browser ok; driving the CAM explorer")
        check_cam_explorer(page, cam_out, shots)
        log("CAM explorer ok")
        page.screenshot(path=str(shots / "lab_after.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(shots / "failure.png"), full_page=True)
        print(f"screenshots in {shots}; jupyter lab log tail:\n{lab.log_tail()}")
        print("browser console (last 40):\n" + "\n".join(CONSOLE[-40:]))
        raise
    print(f"UI check took {time.monotonic() - t0:.1f} s after the server was up; screenshots in {shots}")
