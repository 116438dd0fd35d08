"""What every study shares: where outputs go, how results are written, how work is cached.

A study writes into its output folder:

    result.json      {"study", "config", "metrics", "tables", "findings", "figures", "seconds", ...}
    figures/*.png    every figure the notebook draws

The runner (`workbench run`) gives each notebook its own folder inside a new run folder and
gathers these into the run's summary. Outside the runner a notebook writes to
runs/adhoc/<study>-<time>/.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


def output_dir(path: str | Path | None, study: str) -> Path:
    """The folder a study writes to: `path` if given, else a new runs/adhoc/<study>-<time>/."""
    if path:
        out = Path(path)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = REPO_ROOT / "runs" / "adhoc" / f"{study}-{stamp}"
        n = 1
        while out.exists():
            out = out.with_name(f"{study}-{stamp}-{n}")
            n += 1
    (out / "figures").mkdir(parents=True, exist_ok=True)
    return out


def cache_dir(kind: str) -> Path:
    """Where expensive artefacts are cached by config hash (env WORKBENCH_CACHE overrides)."""
    root = Path(os.environ.get("WORKBENCH_CACHE", REPO_ROOT / ".cache" / "workbench"))
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def config_hash(cfg: Any, n: int = 12) -> str:
    """A stable short hash of a config (dataclass or dict), for caching by config."""
    blob = json.dumps(to_jsonable(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def write_json_atomic(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1))
    os.replace(tmp, path)
    return path


def write_result(out: Path, study: str, config: Any, metrics: dict, tables: dict | None = None,
                 findings: str = "", seconds: float | None = None) -> Path:
    """Write result.json for a study (atomically); figures already saved are listed."""
    figures = sorted(str(p.relative_to(out)) for p in (out / "figures").glob("*.png"))
    return write_json_atomic(out / "result.json", {
        "study": study, "config": config, "metrics": metrics, "tables": tables or {},
        "findings": findings, "figures": figures, "seconds": seconds,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__, "python": platform.python_version(),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    })


def save_figure(fig, out: Path, name: str, dpi: int = 110) -> Path:
    """Save a matplotlib figure as out/figures/<name>.png (the notebook still shows it)."""
    path = out / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
