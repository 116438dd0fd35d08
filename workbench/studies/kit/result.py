"""The `Result` contract, output folders, devices and presets: the same for every study.

A study writes into its output folder:

    result.json      {"study", "config", "rows", "metrics", "tables", "findings", "figures",
                      "timings", "seconds", "environment"}
    figures/*.png    every figure the notebook draws (`Result.save_figure`)

`rows` are the study's cells, one dict each: {"method", "setting", "seed", <metric>: value, ...}.
The runner (`workbench run`) gives each notebook its own folder inside a new run folder and gathers
these into the run's summary. Outside the runner a notebook writes to runs/adhoc/<study>-<time>/.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[3]


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


def device(name: str | torch.device | None = None) -> torch.device:
    """Where a study runs: `name` if given (checked), else cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={name!r} is not a device; accepted: 'cpu', 'cuda', 'cuda:N', 'mps' or None "
                         "(cuda if available)") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: this machine has no CUDA device; use 'cpu' or None")
    return dev


def preset(cls, quick: bool, quick_overrides: dict[str, Any], overrides: dict[str, Any]):
    """`cls(**overrides)`, shrunk by `quick_overrides` when `quick`; None values keep the default
    (a notebook's parameters cell passes None for "the study's default")."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise TypeError(f"{cls.__module__}.{cls.__name__} has no field(s) {', '.join(unknown)}; accepted: "
                        + ", ".join(f.name for f in dataclasses.fields(cls)))
    return cls(**({**quick_overrides, **given} if quick else given))


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, tensors, paths and numpy scalars as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in (sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj)]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to a temporary file beside `path`, then rename it over `path` (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(to_jsonable(data), indent=1))
    os.replace(tmp, path)
    return path


def save_figure(fig, out: Path, name: str, dpi: int = 110) -> None:
    """Save a matplotlib figure as out/figures/<name>.png (the notebook still shows it; returns
    nothing, so that a notebook cell ending with it prints no path)."""
    path = Path(out) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")


def environment() -> dict[str, Any]:
    """What produced a result: device, library versions, threads, time."""
    return {"device": "cuda" if torch.cuda.is_available() else "cpu",
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "platform": platform.platform(), "written": time.strftime("%Y-%m-%d %H:%M:%S")}


@dataclass(kw_only=True)
class Result:
    """What every study returns and writes: cells as rows, tables, findings, figures, timings.

    Studies subclass it to carry what their notebook draws from (models, snapshots); only the
    fields below reach result.json.
    """

    study: str
    config: Any
    output_dir: Path
    rows: list[dict] = field(default_factory=list)  # one per cell: method, setting, seed, metrics
    metrics: dict[str, Any] = field(default_factory=dict)  # study-level numbers (not per cell)
    tables: dict[str, list[dict]] = field(default_factory=dict)  # name -> rows, as the notebook shows them
    findings: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "total", and any stage

    @property
    def seconds(self) -> float | None:
        return self.timings.get("total")

    @property
    def figures(self) -> list[str]:
        return sorted(str(p.relative_to(self.output_dir)) for p in (self.output_dir / "figures").glob("*.png"))

    def save_figure(self, fig, name: str, dpi: int = 110) -> None:
        save_figure(fig, self.output_dir, name, dpi)

    def write(self) -> Path:
        """(Re)write result.json atomically; call again after saving figures so it lists them."""
        return write_json_atomic(self.output_dir / "result.json", {
            "study": self.study, "config": self.config, "rows": self.rows, "metrics": self.metrics,
            "tables": self.tables, "findings": self.findings, "figures": self.figures, "timings": self.timings,
            "seconds": self.seconds, "environment": environment()})
