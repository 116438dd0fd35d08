"""The cell cache: finished cells are kept on disk and reused while nothing that decides them changed.

What decides a cell, and so its key:

* the whole resolved `Config`, minus the fields the study declares in its skip list (which
  methods, seeds or ranks are swept, which cell's artefacts are kept: choices of *which* cells,
  not of what a cell computes) -- a new knob changes the key without anyone listing it;
* the model's weights (`weights_fingerprint`: every parameter and buffer, bytes, dtype, shape);
* the data (a fingerprint the study passes, e.g. of the world's config or an ImageFolder listing);
* the device type the cells run on (cpu, cuda: float sums differ between them);
* the cell itself (method, setting, seed) and the study's cache version.

A truncated or unreadable entry is never fatal: it is reported in one line, set aside as
`<name>.corrupt` and recomputed.

Beside a cell's entry `<cell>.json` (its metrics, nothing else: notebooks compare them exactly) lie
`<cell>.where.json` (where it ran: host, executor, SLURM job, time) and `<cell>.lock`: `cache.lock(cell)`
holds an exclusive `flock` on it while a process loads-or-computes the cell, so a second process
(another sweep, a notebook, a requeued job) waits for the first and then reads its result.

Checkpoints: while a cell is computed with checkpoints on (`run_cells(..., checkpoint_every=N)`: a sweep's
jobs by default, a notebook only with env WORKBENCH_CHECKPOINT_EVERY), `checkpoint(name)` gives its training
run `name` a file in `<cell>.ckpt/` beside its entry (unique per cell and cache key) and the interval, for the
engine's `train(..., checkpoint=)`; a rerun of an interrupted cell (a requeued job) resumes from there, and
the folder is removed once the cell's entry is written.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from workbench.checks import BadValue, check_writable_dir

from .cells import Cell
from .result import REPO_ROOT, to_jsonable, write_json_atomic

try:
    import fcntl
except ImportError:  # not on POSIX: cell locks are no-ops there
    fcntl = None

CACHE_ROOT_ENV = "WORKBENCH_CACHE"
CHECKPOINT_ENV = "WORKBENCH_CHECKPOINT_EVERY"  # steps between a cell's training checkpoints; unset or 0: none
KIT_VERSION = 1  # bump when the kit's own cell format changes
WHERE = "where.json"  # <cell>.where.json: where a cached cell ran
DEFAULT_CACHE_ROOT = REPO_ROOT / ".cache" / "workbench"


def cache_root() -> Path:
    """The cache root: env WORKBENCH_CACHE, else .cache/workbench in the repository.

    A relative value is taken from the current folder when it is read, and written back to the
    environment as that absolute path: notebook kernels and jobs, which start in other folders, inherit
    the same root. An empty or blank value, one with spaces around it, a file or a folder that cannot be
    written is refused (BadValue naming WORKBENCH_CACHE)."""
    value = os.environ.get(CACHE_ROOT_ENV)
    if value is None:
        return DEFAULT_CACHE_ROOT
    accepted = (f"accepted: a folder path, absolute or relative to the current folder, or {CACHE_ROOT_ENV} unset "
                f"for {DEFAULT_CACHE_ROOT}")
    if not value.strip():
        raise BadValue(f"{CACHE_ROOT_ENV}={value!r} is empty; {accepted}")
    if value != value.strip():
        raise BadValue(f"{CACHE_ROOT_ENV}={value!r} starts or ends with a space (a folder named so is almost "
                       f"surely a typo); {accepted}")
    root = check_writable_dir(Path(os.path.abspath(Path(value).expanduser())), f"the cell cache ({CACHE_ROOT_ENV})",
                              make=False)  # made by cache_dir, when something is cached
    os.environ[CACHE_ROOT_ENV] = str(root)
    return root


def cache_dir(kind: str) -> Path:
    """Where expensive artefacts of `kind` are cached (env WORKBENCH_CACHE moves the root: `cache_root`)."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def hash_of(obj: Any, n: int = 16) -> str:
    """A stable short hash of a JSON-able value (dataclasses, tuples and paths included)."""
    blob = json.dumps(to_jsonable(obj), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A hash of every parameter and buffer of `module` (name, dtype, shape and bytes)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def config_key(cfg: Any, skip: Iterable[str] = (), **extra: Any) -> str:
    """A hash of the whole config (a dataclass) except the `skip` fields, plus `extra` values."""
    skip = set(skip)
    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = skip - names
    if unknown:
        raise ValueError(f"skip list names fields {sorted(unknown)} that {type(cfg).__name__} does not have")
    fields = {n: getattr(cfg, n) for n in sorted(names - skip)}
    return hash_of({"config": fields, "extra": extra, "kit": KIT_VERSION})


class CellCache:
    """Finished cells of one study under one (config minus skip list, weights, data, version).

        cache = CellCache("cp_rank_ablation", cfg, skip=SKIP, weights=fp, data=data_fp, version=2)
        row = cache.load(cell)          # None: not there (or corrupt: reported, set aside)
        cache.save(cell, row)
        cache.artefact(cell, "adapter.pt")
    """

    def __init__(self, study: str, cfg: Any, *, skip: Iterable[str] = (), weights: str = "",
                 data: Any = None, device: str = "cpu", version: int = 1, enabled: bool = True,
                 executor: str = "in-process"):
        self.study, self.enabled = study, enabled
        self.executor = executor  # recorded in each saved cell's where.json: "in-process", "local", "slurm"
        self.key = config_key(cfg, skip, weights=weights, data=data, device=device, version=version)
        self.folder = cache_dir(study) / self.key

    def path(self, cell: Cell) -> Path:
        return self.folder / f"{cell.id}.json"

    def artefact(self, cell: Cell, name: str) -> Path:
        """A file that belongs to `cell` (kept weights, say), beside its metrics."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{cell.id}.{name}"

    def load(self, cell: Cell, needs: Iterable[Path] = ()) -> dict | None:
        """The cell's cached metrics, or None when absent, corrupt, or an artefact in `needs` is missing."""
        path = self.path(cell)
        if not self.enabled or not path.is_file() or not all(Path(p).is_file() for p in needs):
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError) as err:
            set_aside(path, err)
            return None

    def save(self, cell: Cell, metrics: dict) -> Path:
        """Write the cell's metrics (atomically), then where it ran beside them (`<cell>.where.json`); its
        training checkpoints (`<cell>.ckpt/`) are then of no more use and removed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = write_json_atomic(self.path(cell), metrics)
        write_json_atomic(self.folder / f"{cell.id}.{WHERE}", where_ran(self.executor))
        folder = self.checkpoints(cell)
        if folder.exists():
            try:
                shutil.rmtree(folder)
            except OSError as err:  # the cell is saved: a leftover folder only takes space
                warnings.warn(f"cell {self.study}/{cell.id} is saved but its checkpoints {folder} could not be "
                              f"removed ({err}); remove them by hand", RuntimeWarning, stacklevel=2)
        return path

    def checkpoints(self, cell: Cell) -> Path:
        """The folder of the cell's training checkpoints (`<cell>.ckpt/`, made when the first is written)."""
        return self.folder / f"{cell.id}.ckpt"

    @contextlib.contextmanager
    def computing(self, cell: Cell, every: int = 0) -> Iterator[None]:
        """Around the computation of `cell`: with `every` > 0 (and the cache on), `checkpoint(name)` inside
        gives the cell's training runs their checkpoints in `checkpoints(cell)`, written every `every` steps;
        a checkpoint left there by an interrupted computation is resumed from (said once, on stderr)."""
        every = check_interval(every, "checkpoint_every")
        if not every or not self.enabled:
            yield
            return
        folder = self.checkpoints(cell)
        left = sorted(p.name for p in folder.glob("*.pt")) if folder.is_dir() else []
        if left:
            print(f"cell {self.study}/{cell.id}: resuming from its checkpoint(s) {', '.join(left)} in {folder}",
                  file=sys.stderr, flush=True)
        token = _COMPUTING.set((folder, every))
        try:
            yield
        finally:
            _COMPUTING.reset(token)

    def where(self, cell: Cell) -> dict | None:
        """Where the cached cell ran ({"host", "executor", "slurm_job_id", "time", ...}), None if unrecorded."""
        try:
            return json.loads((self.folder / f"{cell.id}.{WHERE}").read_text())
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def lock(self, cell: Cell) -> Iterator[None]:
        """Hold `<folder>/<cell>.lock` exclusively: one process at a time loads-or-computes the cell.

        A process that finds it held says once (stderr) who holds it, then waits. The lock goes with
        the process (closed file, killed job), so a crashed holder never blocks the next one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{cell.id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _holder(fd)
                    print(f"cell {self.study}/{cell.id}: {holder or 'another process'} is computing it; waiting "
                          "for its result", file=sys.stderr, flush=True)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(where_ran(self.executor)).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the lock


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """Where one training run of the cell being computed checkpoints, and how often: the engine's
    `train(..., checkpoint=ck.path)` with `TrainConfig(..., checkpoint_every=ck.every)`."""

    path: Path
    every: int


_COMPUTING: ContextVar[tuple[Path, int] | None] = ContextVar("workbench_cell_checkpoints", default=None)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def checkpoint(name: str = "train") -> Checkpoint | None:
    """The checkpoint of the training run `name` (one per run a cell trains: "train", "linear_probe", ...) of
    the cell being computed; None outside a cell's computation or with checkpoints off (a notebook's default,
    so its timings stay as they were). Calling the engine again with it resumes where an interrupted run of
    the same cell stopped, with the same numbers."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"checkpoint name {name!r}: letters, digits, '_' and '-' (a file name), e.g. 'train'")
    active = _COMPUTING.get()
    if active is None:
        return None
    folder, every = active
    folder.mkdir(parents=True, exist_ok=True)
    return Checkpoint(folder / f"{name}.pt", every)


def check_interval(value: Any, what: str) -> int:
    """A checkpoint interval: a whole number of steps >= 0 (0: no checkpoints)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}={value!r}: give a whole number of steps >= 0 (0: no checkpoints)")
    return value


def checkpoint_every(value: int | None = None) -> int:
    """`value`, else env WORKBENCH_CHECKPOINT_EVERY (unset or empty: 0): steps between the checkpoints of a
    cell's training runs; 0 means none."""
    if value is not None:
        return check_interval(value, "checkpoint_every")
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    try:
        return check_interval(int(env), CHECKPOINT_ENV) if env else 0
    except ValueError:
        raise ValueError(f"{CHECKPOINT_ENV}={env!r}: give a whole number of steps >= 0 (0: no checkpoints)") \
            from None


def where_ran(executor: str = "in-process") -> dict:
    """This process: host, executor, SLURM job (array jobs as <array>_<task>), time, pid and torch threads."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")
    return {"host": socket.gethostname(), "executor": executor, "slurm_job_id": job,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "pid": os.getpid(), "threads": torch.get_num_threads()}


def _holder(fd: int) -> str:
    """Who holds a cell lock, as its holder wrote it into the lock file ("" if not yet written)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return ""
    if not info:
        return ""
    job = f", SLURM job {info['slurm_job_id']}" if info.get("slurm_job_id") else ""
    return f"{info.get('executor', 'a process')} pid {info.get('pid')} on {info.get('host')}{job}"


def set_aside(path: Path, err: BaseException) -> Path:
    """Move an unreadable cache file out of the way (`.corrupt`) and say so in one line."""
    target = path.with_name(path.name + ".corrupt")
    os.replace(path, target)
    warnings.warn(f"cache entry {path} is unreadable ({type(err).__name__}: {err}); set aside as "
                  f"{target.name}, recomputing", RuntimeWarning, stacklevel=3)
    return target


def load_tensors(path: Path) -> Any | None:
    """`torch.load(path, weights_only=True)`, or None (reported, set aside) if the file is unreadable."""
    if not Path(path).is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle error, 0-byte file: all mean "recompute"
        set_aside(Path(path), err)
        return None
