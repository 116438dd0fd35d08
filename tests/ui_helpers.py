"""Helpers for the JupyterLab UI test: a throwaway `jupyter lab` server and a headless chromium.

Both are started in isolated temporary folders (Jupyter config, runtime, settings, workspaces,
browser profile) and always stopped by their context managers, whatever the test did.
Only the Debian `chromium` binary is used: `playwright install` downloads cannot work offline.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def missing_tools() -> str | None:
    """Why the UI test cannot run here (None when playwright, chromium and jupyter lab are present)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python package playwright is not installed (pip install -e '.[ui]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if not (Path(sys.executable).parent / "jupyter-lab").exists():
        return f"jupyter-lab is not installed next to {sys.executable}"
    return None


LAB_SETTINGS = {  # user settings of the throwaway lab: nothing may pop up over the notebook
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True, "windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running `jupyter lab`: base `url`, `token`, the served `root` folder and the server `log` file."""
    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else "(no server log)"


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={server.token}", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the server's own process group (server + its kernels), SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


@contextlib.contextmanager
def jupyter_lab(root: Path, work: Path, timeout: float = 90.0) -> Iterator[LabServer]:
    """Serve `root` with the venv's `jupyter lab` on a free localhost port; `work` holds its state."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1",
               TOKENIZERS_PARALLELISM="false", WORKBENCH_STATIC="", WORKBENCH_RUNNER="",
               PYTHONPATH=os.pathsep.join(
                   [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                     ("IPYTHONDIR", "ipython")):
        (work / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(work / sub)
    for plugin, values in LAB_SETTINGS.items():
        file = work / "settings" / f"{plugin}.jupyterlab-settings"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(values))
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.terminals_enabled=False",
           "--ServerApp.shutdown_no_activity_timeout=600"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        cmd.append("--allow-root")
    log = work / "jupyter-lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        _wait_until_up(server, timeout)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def headless_chromium(profile: Path, viewport: tuple[int, int] = (1400, 1000)):
    """A playwright browser context on Debian's chromium with a fresh profile; yields the context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]})
        try:
            yield context
        finally:
            context.close()


IMAGE_BYTES_JS = """async (img) => {
    const blob = await (await fetch(img.src)).blob();
    return await new Promise((ok) => {
        const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(blob);
    });
}"""


def image_bytes(img_locator) -> bytes:
    """The bytes an ipywidgets Image shows (its <img> src is a blob: URL made from the PNG value)."""
    data_url = img_locator.evaluate(IMAGE_BYTES_JS)
    return base64.b64decode(data_url.split(",", 1)[1])


KERNEL_READY_JS = """() => {
    const session = window.jupyterapp?.shell.currentWidget?.sessionContext;
    const kernel = session?.session?.kernel;
    return !!(session && session.isReady && !session.hasNoKernel && kernel
              && kernel.connectionStatus === "connected" && kernel.status === "idle");
}"""


def kernel_ready(page) -> bool:
    """Whether the notebook in front has a connected, idle kernel (the app is exposed as window.jupyterapp)."""
    return bool(page.evaluate(KERNEL_READY_JS))
