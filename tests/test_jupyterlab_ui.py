"""The notebooks' explorers work in a real JupyterLab, driven like a user by a headless chromium.

The REAL notebooks (notebooks/NN_*.ipynb) are opened in a throwaway `jupyter lab`, with quick
parameters appended to their `parameters` cell, and run from the menu (Run > Run All Cells) in
the kernel. Then every control of every explorer is moved (sliders with the keyboard, dropdowns
picked, toggle buttons clicked) and after each move the test asserts that the kernel redrew: the
picture changed, the text says what it should, controls that do not apply are disabled, and the
busy indicator ended on "updated in ...". The latency of each update (from the move to the new
picture in the browser) is printed, with -s:

    pytest tests/test_jupyterlab_ui.py -s                       # one file, in this process
    WORKBENCH_UI_SHOTS=/tmp/ui_shots pytest tests/test_jupyterlab_ui.py -s   # keep the screenshots

Needs playwright (a dev dependency) and Debian's chromium (`apt-get install chromium`; never
`playwright install`, which downloads). Without them the test skips, except under CI=true, where a
missing browser is a failure (.ci/run installs both).

Adding an explorer (studies 03, 04, ...): append an `ExplorerCase` to EXPLORERS -- the notebook, a
piece of the code cell that displays the explorer, quick parameters, the text of its first state,
and one `Move` per control (its label as shown, how to move it, what the text must then contain,
which controls must then be disabled / enabled). The test fails if a control of the explorer has
no `Move`. The explorer must be a `workbench.viz.explorer.Explorer` (its picture, text and busy
indicator carry the CSS classes wb-image, wb-info and wb-status that the test finds).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.ui_helpers import REPO, headless_chromium, image_bytes, jupyter_lab, kernel_ready, missing_tools

MISSING = missing_tools()
if MISSING is not None and os.environ.get("CI", "").lower() == "true":
    raise RuntimeError(f"CI=true but the browser test cannot run: {MISSING}")  # a failure, never a skip
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=f"UI test skipped: {MISSING}")]

WAIT = 120.0  # seconds for any one UI step; the machine may be busy
RUN_WAIT = 1500.0  # seconds for a whole notebook to run in quick mode on 2 busy cores


@dataclass
class Move:
    """One user action on one control, and what must hold afterwards.

    control: the control's label as shown; how: "right" (press the right arrow `value` times on a
    slider), "select" (pick the option `value` of a dropdown) or "click" (the toggle button `value`).
    text: a substring the explorer's text must then contain (None: it may stay as it was);
    disabled / enabled: labels of controls that must then be greyed out / usable.
    """

    control: str
    how: str
    value: object = 1
    text: str | None = None
    disabled: tuple[str, ...] = ()
    enabled: tuple[str, ...] = ()


@dataclass
class ExplorerCase:
    """An explorer in a real notebook: where it is, how to run it quickly, and how to drive it."""

    name: str
    notebook: str  # stem in notebooks/
    marker: str  # a piece of the code cell that displays the explorer
    params: dict  # appended to the parameters cell (quick values)
    first_text: str  # the explorer's text in its first state contains this
    moves: list[Move]
    check: Callable[[int, bytes], bool] | None = None  # (move index, or -1 for the first state; picture) -> ok
    latencies: list[tuple[str, float, float]] = field(default_factory=list)  # (move, browser s, kernel s)


def _world_picture(split: str, index: int, style: str) -> bytes:
    from workbench.viz.world import scene_png
    from workbench.world import World

    return scene_png(World(), split, index, style)


WORLD_STATES = [("pretrain", 0, "contour"), ("pretrain", 1, "contour"), ("ood_flipped", 1, "contour"),
                ("ood_flipped", 1, "overlay")]


def _check_world(i: int, png: bytes) -> bool:
    """The browser's picture is exactly `scene_png` of the state the moves reached."""
    return png == _world_picture(*WORLD_STATES[i + 1])


EXPLORERS = [
    ExplorerCase(
        name="world browser", notebook="00_world_and_model", marker="viz.browser(world)",
        params={"quick": True}, first_text="pretrain[0]", check=_check_world,
        moves=[Move("index", "right", 1, text="pretrain[1]"),
               Move("split", "select", "ood_flipped", text="ood_flipped[1]"),
               Move("mask", "click", "overlay", text="ood_flipped[1]")]),
    ExplorerCase(
        name="CAM explorer (zero-shot, FT, masked distillation)", notebook="01_cam_counterfactual_masking",
        marker="cam_viz.cam_explorer(", params={"quick": True, "n_examples": 3}, first_text="true class:",
        moves=[Move("image", "right", 1, text="true class:"),
               Move("class", "select", 1, text="p("),
               Move("CAM", "select", 1, text="zero-shot"),
               Move("threshold", "right", 1),
               Move("fill", "select", "multi"),
               Move("mask", "select", "context", enabled=("CAM", "threshold"), disabled=("random p",)),
               Move("mask", "select", "random", disabled=("CAM", "threshold"), enabled=("random p",)),
               Move("random p", "right", 1)]),
    ExplorerCase(
        name="codebook explorer", notebook="03_codebook_visualization", marker="codebook_explorer(",
        params={"quick": True}, first_text="codes used",
        moves=[Move("train step", "right", 1, text="step "), Move("code", "select", 1, text="code "),
               Move("sequence", "right", 1, text="sequence 1"), Move("exemplars", "right", 1)]),
    ExplorerCase(
        name="module-selection explorer", notebook="04_module_selection", marker="mviz.explorer(",
        params={"quick": True}, first_text="sample 0",
        moves=[Move("sample", "right", 1, text="sample 1"),
               Move("task", "select", "captioning", text="captioning"),
               Move("path", "select", 1),
               Move("k", "select", 1, text="k=0", disabled=("path",)),
               Move("compare", "click", "across paths", text="(default)", disabled=("k", "path")),
               Move("compare", "click", "across k", text="k=2", disabled=("k", "path"))]),
]

T0 = time.monotonic()
CONSOLE: list[str] = []  # the browser's console, printed when the test fails


def log(msg: str) -> None:
    """Progress on stdout (seen with -s): where the time goes on a busy machine."""
    print(f"[ui {time.monotonic() - T0:6.1f} s] {msg}", flush=True)


def quick_copy(stem: str, root: Path, params: dict, output_dir: Path) -> str:
    """notebooks/<stem>.ipynb into `root` with `params` (and output_dir) appended to its parameters cell."""
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / f"{stem}.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    lines = [f"{k} = {v!r}" for k, v in {**params, "output_dir": str(output_dir)}.items()]
    cell.source = cell.source.rstrip() + "\n# quick parameters of tests/test_jupyterlab_ui.py\n" + "\n".join(lines)
    nb.metadata.pop("jupytext", None)  # unpaired: JupyterLab's jupytext would refuse a newer ipynb than its .py
    (root / f"{stem}.py").unlink(missing_ok=True)
    nbformat.write(nb, root / f"{stem}.ipynb")
    return f"{stem}.ipynb"


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
        time.sleep(0.05)
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


def run_all_cells(page, lab, name: str) -> None:
    """Open the notebook, wait for its kernel, run it from the menu and wait for every cell.

    On a loaded machine JupyterLab has asked for a kernel (chooser dialog) or dropped a Run All
    pressed right after the kernel came up: the chooser is accepted and Run All pressed again.
    """
    log(f"opening {name}")
    page.goto(lab.lab_url(name))
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
    chooser = page.locator(".jp-Dialog", has_text="Select Kernel")
    prompts = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt")
    started = lambda: any(t.strip() not in ("", "[ ]:") for t in prompts.all_inner_texts())
    for _ in range(3):
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
            wait_for(lambda: started() or chooser.count() > 0, "the cells to start", timeout=30)
        if started():
            break
        log("the cells did not start; trying again")
    else:
        raise AssertionError("Run All Cells never started the cells; see failure.png")
    done = lambda: all(re.fullmatch(r"\[\d+\]:", t.strip()) for t in prompts.all_inner_texts())
    failed = lambda: [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "Traceback" in t
                      or "Error" in t.split("\n", 1)[0]]
    t0 = time.monotonic()
    wait_for(lambda: done() or failed(), f"every cell of {name} to finish ([n]: prompts)", timeout=RUN_WAIT)
    assert not failed(), f"{name} raised:\n{failed()[0][-3000:]}"
    log(f"{name}: all cells ran in {time.monotonic() - t0:.0f} s")


def _control(out, page, label: str):
    """The widget of the control described `label` in the explorer's output (the label's parent element)."""
    return out.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")).first.locator("xpath=..")


def _is_disabled(out, page, label: str) -> bool:
    w = _control(out, page, label)
    inner = w.locator("select, button, .noUi-target, input").first
    return inner.is_disabled() or inner.get_attribute("disabled") is not None


def _move(out, page, m: Move) -> None:
    w = _control(out, page, m.control)
    if m.how == "right":
        handle = w.locator(".noUi-handle")
        handle.focus()
        for _ in range(int(m.value)):
            handle.press("ArrowRight")
    elif m.how == "select":
        select = w.locator("select")
        if isinstance(m.value, int):
            current = select.evaluate("s => s.selectedIndex")
            select.select_option(index=(current + int(m.value)) % select.locator("option").count())
        else:
            select.select_option(label=str(m.value))
    elif m.how == "click":
        w.locator("button", has_text=str(m.value)).click()
    else:
        raise ValueError(f"Move.how={m.how!r}; accepted: 'right', 'select', 'click'")


def drive(page, case: ExplorerCase, shots: Path) -> None:
    """Move every control of one explorer; assert picture, text, disabled controls and the busy indicator."""
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell", has=page.locator(".jp-InputArea", has_text=case.marker))
    out = cell.first.locator(".jp-OutputArea")
    img, info, status = out.locator("img.wb-image"), out.locator(".wb-info"), out.locator(".wb-status")
    wait_for(lambda: img.count() and info.count(), f"the {case.name}'s widgets (live, not a static picture)")
    out.scroll_into_view_if_needed()
    labels = {t.strip() for t in out.locator(".widget-label").all_inner_texts() if t.strip()}
    missing = labels - {m.control for m in case.moves}
    assert not missing, f"{case.name}: controls {sorted(missing)} are never moved; add a Move for each"
    wait_for(lambda: case.first_text in info.inner_text(), f"the {case.name}'s first text {case.first_text!r}")
    before = wait_for(lambda: image_bytes(img), f"the {case.name}'s first picture")
    assert case.check is None or case.check(-1, before), f"the {case.name}'s first picture is wrong"
    slug = re.sub(r"\W+", "_", case.name).strip("_")
    out.screenshot(path=str(shots / f"{slug}_0_first.png"))
    for i, m in enumerate(case.moves):
        text_before = info.inner_text()
        t0 = time.monotonic()
        _move(out, page, m)

        def redrawn():
            png = image_bytes(img)
            return (png != before and "updated in" in status.inner_text()
                    and (m.text is None or m.text in info.inner_text())
                    and (case.check is None or case.check(i, png))) and png

        after = wait_for(redrawn, f"a new picture (and text {m.text!r}) after {m}")
        latency = time.monotonic() - t0
        text = info.inner_text()
        if m.control in ("class", "split", "index", "image"):
            assert text != text_before, f"after {m}: the text did not change ({text!r})"
        for label in m.disabled:
            wait_for(lambda: _is_disabled(out, page, label), f"{label!r} to be disabled after {m}", timeout=10)
        for label in m.enabled:
            wait_for(lambda: not _is_disabled(out, page, label), f"{label!r} to be enabled after {m}", timeout=10)
        rendered = re.search(r"updated in ([\d.]+) s", status.inner_text())
        kernel = float(rendered.group(1)) if rendered else float("nan")
        case.latencies.append((f"{m.control} {m.how} {m.value}", latency, kernel))
        log(f"{case.name}: {m.control} -> {m.value}: new picture after {latency:.2f} s (kernel drew it in "
            f"{kernel:.2f} s)")
        control = re.sub(r"\W+", "_", m.control)
        out.screenshot(path=str(shots / f"{slug}_{i + 1}_{control}.png"))
        before = after


NOTEBOOKS = sorted({c.notebook for c in EXPLORERS})


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_explorers_respond_in_jupyterlab(stem, lab, lab_page, shots, tmp_path):
    page = lab_page
    cases = [c for c in EXPLORERS if c.notebook == stem]
    params = {k: v for c in cases for k, v in c.params.items()}
    name = quick_copy(stem, lab.root, params, tmp_path / "outputs")
    try:
        run_all_cells(page, lab, name)
        page.screenshot(path=str(shots / f"{stem}_after_run.png"))
        for case in cases:
            log(f"driving the {case.name}")
            drive(page, case, shots)
    except BaseException:
        page.screenshot(path=str(shots / f"{stem}_failure.png"), full_page=True)
        print(f"screenshots in {shots}; jupyter lab log tail:\n{lab.log_tail()}")
        print("browser console (last 40):\n" + "\n".join(CONSOLE[-40:]))
        raise
    for case in cases:
        times = [t for _, t, _ in case.latencies]
        print(f"\n{case.name}: per-update latency (move -> new picture in the browser; the kernel's drawing "
              f"time in brackets), {len(times)} updates, median {sorted(times)[len(times) // 2]:.2f} s, "
              f"max {max(times):.2f} s")
        for what, t, kernel in case.latencies:
            print(f"    {what:<28} {t:6.2f} s  ({kernel:.2f} s)")
