"""The `Result` contract, output folders, devices and presets: the same for every study.

A study writes into its output folder:

    result.json      {"study", "config", "rows", "metrics", "tables", "findings", "headline",
                      "main_table", "percent", "figures", "figure_captions", "timings",
                      "claims", "claims_family", "seconds", "environment"}
    figures/*.png    every figure the notebook draws (`save_figure`, with its caption)
    figures/captions.json  name -> {"caption", "main", "order"} as `save_figure` recorded them

`rows` are the study's cells, one dict each: {"method", "setting", "seed", <metric>: value, ...}.
The runner (`workbench run`) gives each notebook its own folder inside a new run folder and gathers
these into the run's summary. Outside the runner a notebook writes to runs/adhoc/<study>-<time>/.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import platform
import time
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.checks import BadType, BadValue, atomic_path, check_device, check_writable_dir

REPO_ROOT = Path(__file__).resolve().parents[3]


def output_dir(path: str | Path | None, study: str) -> Path:
    """The folder a study writes to: `path` if given, else a new runs/adhoc/<study>-<time>/. A path that is a file,
    lies under a file, loops or cannot be written is refused first (BadValue naming it, nothing made)."""
    if path is not None and not isinstance(path, (str, Path)):
        raise BadType(f"output_dir={path!r} is a {type(path).__name__}; accepted: a folder path (str or Path) or None "
                      "(a new runs/adhoc/<study>-<time>/)")
    if path:
        out = Path(path)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = REPO_ROOT / "runs" / "adhoc" / f"{study}-{stamp}"
        n = 1
        while out.exists():
            out = out.with_name(f"{study}-{stamp}-{n}")
            n += 1
    check_writable_dir(out, "output folder (output_dir)")
    check_writable_dir(out / "figures", "figures folder of output_dir")
    return out


def device(name: str | torch.device | None = None) -> torch.device:
    """Where a study runs: `name` if given (checked: a device this machine has), else cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(name)


DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device_field(cfg: Any) -> None:
    """A Config's `device`: None or the name of a device type torch knows ('cpu', 'cuda', 'cuda:N', 'mps'), refused
    on construction (BadValue naming it); whether this machine has it is checked where the study runs (`device`),
    since a Config may be built on a machine other than the one that runs its cells (a SLURM login node)."""
    name = getattr(cfg, "device", None)
    if name is None:
        return
    accepted = "accepted: None (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        kind = torch.device(name).type
    except (RuntimeError, TypeError):
        kind = None
    if kind not in DEVICE_TYPES:
        raise BadValue(f"{type(cfg).__name__}.device={name!r} is not a device name; {accepted}")


def tuple_fields(cfg: Any, names: Iterable[str], scalars: tuple[type, ...] = (str, int)) -> None:
    """Make a frozen Config's sequence fields tuples (hashable, cache-stable); a lone scalar is a clear error."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, scalars):
            raise ValueError(f"{name}={value!r} must be a tuple, e.g. {name}=({value!r},)")
        object.__setattr__(cfg, name, tuple(value))


def check_seeds(cfg: Any, names: Iterable[str]) -> None:
    """Seed fields as tuples of distinct integers (a repeated seed would fake the statistics: one seed counted
    twice gives a zero-width interval)."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, (str, bytes, int, float)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name}={value!r} must be a tuple of integer seeds, e.g. {name}=(0, 1)")
        value = tuple(value)
        bad = [s for s in value if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if bad:
            raise ValueError(f"{name}={value!r}: seeds are integers >= 0, got {bad}")
        dupes = sorted({s for s in value if value.count(s) > 1})
        if dupes:
            raise ValueError(f"{name}={value!r}: seed(s) {dupes} given twice; each seed counts once")
        object.__setattr__(cfg, name, value)


def preset(cls, quick: bool, quick_overrides: dict[str, Any], overrides: dict[str, Any]):
    """`cls(**overrides)`, shrunk by `quick_overrides` when `quick`; None values keep the default
    (a notebook's parameters cell passes None for "the study's default"). Every given value is checked
    against its field's type first (`check_types`), so `steps=2.5` fails here, not inside training."""
    if not isinstance(quick, (bool, np.bool_)):
        raise BadType(f"quick={quick!r} is a {type(quick).__name__}; accepted: True (the quick preset) or False")
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise TypeError(f"{cls.__module__}.{cls.__name__} has no field(s) {', '.join(unknown)}; accepted: "
                        + ", ".join(f.name for f in dataclasses.fields(cls)))
    check_types(cls, given)
    return cls(**({**quick_overrides, **given} if quick else given))


def check_config(cfg: Any) -> None:
    """Every field of a Config checked against its annotation (`check_types`): a Config's __post_init__ calls it."""
    check_types(type(cfg), {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})


def check_types(cls: type, values: dict[str, Any]) -> None:
    """A ValueError naming the field, the value and its declared type when a value does not fit the field's
    annotation (int, float (an int is fine), str, bool, None, tuples / mappings of those, unions)."""
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        hint = hints.get(name)
        if hint is not None and not _fits(value, hint):
            if isinstance(value, (str, int, float)) and _fits((value,), hint):
                raise ValueError(f"{name}={value!r} must be a tuple, e.g. {name}=({value!r},)")
            raise ValueError(f"{name}={value!r} ({type(value).__name__}) does not fit {cls.__name__}.{name}: "
                             f"{_hint_name(hint)}")


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin in (tuple, list, collections.abc.Sequence):
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if origin in (dict, collections.abc.Mapping, typing.Mapping):
        return isinstance(value, dict) and (not args or all(_fits(k, args[0]) and _fits(v, args[1])
                                                             for k, v in value.items()))
    return isinstance(value, origin or hint) if isinstance(origin or hint, type) else True


def _hint_name(hint: Any) -> str:
    if hint is float:
        return "a finite float"
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "").replace("NoneType", "None")


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
    """Write JSON to a temporary file beside `path`, then rename it over `path` (never half-written; a full
    disk or a file-size limit raises WriteError naming `path` and leaves no partial file)."""
    path = Path(path)
    try:
        text = json.dumps(to_jsonable(data), indent=1)
    except (TypeError, ValueError) as e:  # an object JSON cannot hold (a module, a set of tensors, a cycle)
        raise BadType(f"the data for {path} cannot be written as JSON ({e}); accepted: numbers, strings, None, "
                      "lists, dicts, tensors, paths and dataclasses of them") from None
    # a unique temporary name per writer (pid alone repeats across the hosts of a cluster sharing one cache)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


CAPTIONS = "captions.json"  # figures/captions.json: name -> {"caption", "main", "order"}, in the order saved


def save_figure(fig, out: Path, name: str, dpi: int = 110, caption: str = "", main: bool = False) -> None:
    """Save a matplotlib figure as out/figures/<name>.png (the notebook still shows it; returns
    nothing, so that a notebook cell ending with it prints no path).

    `caption`: one or two sentences saying what the figure shows and how to read it (the run
    report prints it under the figure); `main`: the report shows the figure in the study's first
    screen (else folded away with the others). Figures keep the order they were saved in.
    """
    path = Path(out) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    captions = figure_captions(out)
    order = captions.get(name, {}).get("order", len(captions))
    captions[name] = {"caption": caption, "main": bool(main), "order": order}
    write_json_atomic(path.parent / CAPTIONS, captions)


def figure_captions(out: Path) -> dict[str, dict]:
    """What `save_figure` recorded about out/figures/*.png: name -> {"caption", "main", "order"}."""
    path = Path(out) / "figures" / CAPTIONS
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


# the libraries whose numerics reach a study's numbers (the world's arrays, the towers, the CAMs, the tuners)
NUMERIC_LIBRARIES = ("numpy", "open_clip_torch", "timm", "transformers", "accelerate", "peft", "grad-cam",
                     "vector-quantize-pytorch")


def cpu_flags() -> str | None:
    """A short hash of the CPU's feature flags (Linux's /proc/cpuinfo), None where they cannot be read.

    Two CPUs with the same vector width can still take different kernel paths in MKL and oneDNN
    (seen: losses 3e-5 apart, relative, between two AVX512 EPYC machines with one torch build).
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), None)
    if line is None:
        return None
    return hashlib.sha256(" ".join(sorted(line.split(":", 1)[1].split())).encode()).hexdigest()[:12]


def environment() -> dict[str, Any]:
    """What produced a result: device, library versions, threads, CPU instruction set and flags, time.

    torch's CPU kernels pick their vector width by `cpu` (AVX2, AVX512, ...) and split reductions
    by `threads`, so float sums (the losses) differ in the last digits when either differs.
    """
    libraries = {}
    for name in NUMERIC_LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    return {"device": "cuda" if torch.cuda.is_available() else "cpu",
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
            "cpu": torch.backends.cpu.get_cpu_capability(), "cpu_flags": cpu_flags(), "machine": platform.machine(),
            "libraries": libraries, "platform": platform.platform(), "written": time.strftime("%Y-%m-%d %H:%M:%S")}


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
    # the run report's first screen of the study: one or two sentences ending with the verdict against
    # the paper's claim; the table shown first (a key of `tables`); metric columns that are fractions
    # (shown in percent); `<m>_std` / `<m>_ci` columns next to a metric `m` are shown with it
    headline: str = ""
    main_table: str | None = None
    percent: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "total", and any stage
    # the paper's claims judged on these cells (`kit.claims`): result.json's `claims` rows and how they were
    # tested together (`claims_family`); `verdicts` are the same as objects, for the notebook
    claims: list[dict] = field(default_factory=list)
    claims_family: dict[str, Any] = field(default_factory=dict)
    verdicts: list[Any] = field(default_factory=list, repr=False)

    @property
    def seconds(self) -> float | None:
        return self.timings.get("total")

    @property
    def figures(self) -> list[str]:
        """figures/<name>.png in the order they were saved (unrecorded ones last, by name)."""
        captions = figure_captions(self.output_dir)
        files = sorted((self.output_dir / "figures").glob("*.png"),
                       key=lambda p: (captions.get(p.stem, {}).get("order", len(captions)), p.stem))
        return [str(p.relative_to(self.output_dir)) for p in files]

    def save_figure(self, fig, name: str, dpi: int = 110, caption: str = "", main: bool = False) -> None:
        save_figure(fig, self.output_dir, name, dpi, caption, main)

    def write(self) -> Path:
        """(Re)write result.json atomically; call again after saving figures so it lists them."""
        return write_json_atomic(self.output_dir / "result.json", {
            "study": self.study, "config": self.config, "rows": self.rows, "metrics": self.metrics,
            "tables": self.tables, "findings": self.findings, "headline": self.headline,
            "main_table": self.main_table, "percent": list(self.percent), "figures": self.figures,
            "figure_captions": figure_captions(self.output_dir), "timings": self.timings,
            "claims": self.claims, "claims_family": self.claims_family,
            "seconds": self.seconds, "environment": environment()})
