"""A study's cells on a cluster: `workbench sweep NB` submits the cells the cache lacks as a submitit job array.

    workbench sweep 02 --quick --executor local                  # subprocesses on this machine
    workbench sweep 02 -p seeds "(0, 1, 2)" --executor slurm --slurm-partition gpu \\
        --gpus-per-cell 1 --cpus-per-cell 8 --timeout-min 240 --max-parallel 16 --checkpoint-every 50
    workbench run 02 -p seeds "(0, 1, 2)"                        # then: every cell read from the cache

    from workbench.sweep import sweep
    report = sweep("02", quick=True, executor="slurm", slurm_partition="debug")
    report.ok, report.done, report.failed

What runs where: the config is built as the notebook builds it (its parameters cell, the `-p` overrides,
`quick`, then its own `cfg = study.Config.preset(...)` line), the study's context is built here once to plan
the cells and compute the cache key, and every cell the cache does not hold becomes one job (`CellJob`):
`STUDY.run_one(cfg, cell)` on the node, which writes the cell into the same cell cache (byte for byte what
the notebook's `STUDY.run` would write) and records where it ran (`<cell>.where.json`). Cells whose methods
need others (registry `needs`) go in a later wave, submitted once the cells they need are done.

Faults: a cell that raises is reported with its traceback and log path and the others go on (exit 1 at the
end); a job that times out or is preempted is requeued by submitit (`CellJob` is `Checkpointable`), and
one requeued by hand (`scontrol requeue`) starts again the same way: it runs its cell again. A cell that had
finished is read from the cache, not recomputed; the training of a study 01 or 02 cell (the engine's
`train`) resumes from the cell's last checkpoint -- written every `--checkpoint-every` steps (default 50)
into `<cell>.ckpt/` beside the cell's cache entry, removed once the entry is written -- with the numbers of
an uninterrupted run (study 02's validation curve is kept beside the checkpoint). Studies 03 and 04 train in
loops of their own, without checkpoints: their requeued cells start again from scratch. A cancelled job is
a failure (submitit learns it from `sacct`); rerunning the command submits only what is still missing. Two
sweeps (or a sweep and a notebook) on one cell: the cell lock (`CellCache.lock`) lets one compute it and the
other read it.

Bad input -- an unknown executor or partition, a resource <= 0, a notebook without study cells, unknown
parameters, a cache folder that cannot be written (or is local to this machine while the partition has
other nodes) -- raises `SweepError` before anything is submitted (the CLI exits 2).
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

try:  # an optional dependency (extra "cluster"): the CLI imports this module without it
    from submitit.helpers import Checkpointable
except ImportError:  # pragma: no cover - exercised only where submitit is missing
    Checkpointable = object  # type: ignore[assignment,misc]

EXECUTORS = ("local", "slurm")
CHECKPOINT_EVERY = 50  # steps between a cell's training checkpoints in a sweep: what a requeued job loses at most
# file systems that only this machine sees: a cache there cannot collect cells from other nodes
LOCAL_FS = ("tmpfs", "ramfs", "devtmpfs")
LOCAL_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run")
QUEUED = {"PENDING", "REQUEUED", "CONFIGURING", "UNKNOWN", "READY", "SUSPENDED", "PREEMPTED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESV_DEL_HOLD"}


class SweepError(ValueError):
    """Bad input to a sweep, found before anything was submitted (`workbench sweep` exits 2)."""


# ------------------------------------------------------------------------------------------------ the job
class CellJob(Checkpointable):
    """One cell, run on a node: `STUDY.run_one(cfg, cell)` into the cache under `cache_root`, its training
    checkpointed every `checkpoint_every` steps (0: not at all).

    Checkpointable: on a timeout or preemption submitit requeues this same callable; the rerun finds the
    cell in the cache if it had finished (the cell lock makes a concurrent copy wait and read it), else
    computes it again, its engine-trained runs resuming from their last checkpoint (`kit.checkpoint`)."""

    def __init__(self, module: str, cfg: Any, cell: Any, executor: str, key: str, cache_root: str,
                 device_type: str, checkpoint_every: int = CHECKPOINT_EVERY):
        self.module, self.cfg, self.cell, self.executor = module, cfg, cell, executor
        self.key, self.cache_root, self.device_type = key, cache_root, device_type
        self.checkpoint_every = checkpoint_every

    def __call__(self) -> dict:
        from workbench.studies.kit.cache import CACHE_ROOT_ENV, where_ran

        os.environ[CACHE_ROOT_ENV] = self.cache_root
        if self.device_type == "cpu" and getattr(self.cfg, "device", None) is None:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # a CPU cell stays on the CPU (its cache key says cpu)
        study = importlib.import_module(self.module).STUDY
        t0 = time.perf_counter()
        study.run_one(self.cfg, self.cell, executor=self.executor, key=self.key,
                      checkpoint_every=getattr(self, "checkpoint_every", CHECKPOINT_EVERY))
        return {"cell": self.cell.id, "seconds": round(time.perf_counter() - t0, 2), **where_ran(self.executor)}

    def __repr__(self) -> str:
        return f"CellJob({self.module}, {self.cell.id})"


# ------------------------------------------------------------------------------------------------ the plan
@dataclass
class Target:
    """What a notebook sweeps: its study module (`workbench.studies.X`) and the Config it builds."""

    notebook: Path | None
    module: str
    cfg: Any


@dataclass
class Plan:
    """The cells of one sweep: all planned, those the cache lacks, in waves (needs before)."""

    module: str
    study: Any  # kit.Study
    cfg: Any
    cells: list
    pending: list
    waves: list[list]
    cache: Any  # kit.CellCache (key, folder)
    device_type: str
    ctx: Any = None  # the study's context, built here


@dataclass
class CellRun:
    cell: Any
    wave: int
    job: Any = None
    status: str = "waiting"  # waiting (not submitted), queued, running, done, failed, skipped
    error: str = ""
    log: str = ""
    job_id: str = ""


@dataclass
class SweepReport:
    study: str
    executor: str
    cache_folder: Path
    folder: Path
    planned: int
    cached: int  # cells the cache held before the sweep
    runs: list[CellRun] = field(default_factory=list)
    seconds: float = 0.0

    def ids(self, status: str) -> list[str]:
        return [r.cell.id for r in self.runs if r.status == status]

    @property
    def done(self) -> list[str]:
        return self.ids("done")

    @property
    def failed(self) -> list[str]:
        return self.ids("failed")

    @property
    def skipped(self) -> list[str]:
        return self.ids("skipped")

    @property
    def submitted(self) -> int:
        return sum(r.job is not None for r in self.runs)

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.runs)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def notebook_target(notebook: str | Path, params: dict | None = None, quick: bool = False) -> Target:
    """The study and Config that notebook `notebook` (stem, number or path) runs with `params` and `quick`.

    Built as the notebook builds it: its parameters cell, the overrides (checked as `workbench run` checks
    them), `quick`, then the statements its `cfg = ...` line depends on, and that line itself."""
    from workbench.runner import plan_parameters, resolve_notebooks
    from workbench.runner.select import study_of

    try:
        [path] = resolve_notebooks([str(notebook)])
    except (FileNotFoundError, ValueError) as e:
        raise SweepError(str(e)) from None
    cells = json.loads(path.read_text()).get("cells", [])
    first = next((i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if first is None:
        raise SweepError(f"{path.stem} has no parameters cell (a code cell tagged 'parameters'): nothing to sweep")
    statements: list[ast.stmt] = []
    for c in cells[first + 1:]:
        if c.get("cell_type") != "code":
            continue
        try:
            statements.extend(ast.parse(_source(c)).body)
        except SyntaxError:  # a cell with IPython magics: nothing a config is built from
            continue
    found = study_of(path)
    if found is None:
        raise SweepError(f"{path.stem} imports no study (`from workbench.studies import X as study`): it has no "
                         "study cells to sweep")
    module = found.__name__
    mod = _import_study(module, path.stem)
    at = next((i for i, s in enumerate(statements) if isinstance(s, ast.Assign) and len(s.targets) == 1
               and isinstance(s.targets[0], ast.Name) and s.targets[0].id == "cfg"), None)
    if at is None:
        raise SweepError(f"{path.stem} builds no `cfg = ...` from its parameters: nothing to sweep")
    try:
        checked = plan_parameters([path], params, quick)[path]
    except ValueError as e:
        raise SweepError(str(e)) from None
    namespace: dict[str, Any] = {}
    try:
        exec(compile(_source(cells[first]), f"{path.stem}[parameters]", "exec"), namespace)
        namespace.update(checked)
        namespace["quick"] = bool(quick)
        namespace["study"] = mod
        for stmt in _needed(statements[:at], statements[at].value):
            exec(compile(ast.Module([stmt], []), path.stem, "exec"), namespace)
        cfg = eval(compile(ast.Expression(statements[at].value), path.stem, "eval"), namespace)
    except Exception as e:  # the notebook itself would fail here: say so before anything is submitted
        raise SweepError(f"{path.stem}: its config cannot be built from these parameters: "
                         f"{type(e).__name__}: {e}") from None
    return Target(path, module, cfg)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _import_study(module: str, stem: str) -> ModuleType:
    from workbench.studies.kit import Study

    mod = importlib.import_module(module)
    if not isinstance(getattr(mod, "STUDY", None), Study):
        raise SweepError(f"{stem} has no study cells to sweep: its study `{module}` is not declared as a "
                         "`kit.Study` (it runs in one piece; run the notebook with `workbench run`)")
    return mod


def _bound(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _needed(before: Sequence[ast.stmt], value: ast.expr) -> list[ast.stmt]:
    """The statements among `before` (assignments and imports) that `value` depends on, in their order."""
    need, keep = _loaded(value) - {"study"}, []
    for stmt in reversed(before):
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.Import, ast.ImportFrom)):
            continue
        hit = _bound(stmt) & need
        if hit:
            keep.append(stmt)
            need = (need - hit) | (_loaded(stmt) - {"study"})
    return keep[::-1]


def plan_cells(module: str, cfg: Any, device_type: str) -> Plan:
    """Build the study's context here once; every planned cell, the ones not cached, and their waves."""
    mod = _import_study(module, module)
    study = mod.STUDY
    try:
        cfg = study.resolve(cfg)
        ctx = study.context(cfg, use_cache=True, progress=False)
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise SweepError(f"{study.name}: {type(e).__name__}: {e}") from None
    cache = study.cell_cache(cfg, ctx, device_type=device_type)
    pending = study.pending(cfg, ctx, device_type=device_type)  # binds the context to the cache
    cells = study.sweep_cells(cfg, ctx, cache)
    return Plan(module, study, cfg, cells, pending, waves(study, pending, cells), cache, device_type, ctx)


def waves(study: Any, pending: Sequence[Any], cells: Sequence[Any]) -> list[list]:
    """`pending` in waves: a cell goes after every pending cell it needs (registry `needs`)."""
    pend = set(pending)
    depth: dict[Any, int] = {}

    def of(cell: Any) -> int:
        if cell not in depth:
            deps = [d for d in study.depends_on(cell, cells) if d in pend]
            depth[cell] = 1 + max(map(of, deps)) if deps else 0
        return depth[cell]

    out: list[list] = []
    for cell in pending:
        d = of(cell)
        while len(out) <= d:
            out.append([])
        out[d].append(cell)
    return out


# ------------------------------------------------------------------------------------------------ checks
def check_settings(executor: str, gpus_per_cell: int, cpus_per_cell: int, timeout_min: float,
                   max_parallel: int | None, mem_gb: float | None = None,
                   checkpoint_every: int = CHECKPOINT_EVERY) -> None:
    if executor not in EXECUTORS:
        raise SweepError(f"executor {executor!r} is not known; accepted: {', '.join(EXECUTORS)}")
    for name, value, least in (("--gpus-per-cell", gpus_per_cell, 0), ("--cpus-per-cell", cpus_per_cell, 1),
                               ("--timeout-min", timeout_min, None), ("--max-parallel", max_parallel, 1),
                               ("--mem-gb", mem_gb, None), ("--checkpoint-every", checkpoint_every, 0)):
        if value is None and name in ("--max-parallel", "--mem-gb"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SweepError(f"{name} {value!r}: give a number")
        if (least is None and not value > 0) or (least is not None and value < least):
            bound = "> 0" if least is None else f">= {least}"
            raise SweepError(f"{name} {value!r}: must be {bound}")
        if not math.isfinite(value):
            raise SweepError(f"{name} {value!r}: must be finite (a number of minutes, GB, cells, cores or steps)")
        if name in ("--gpus-per-cell", "--cpus-per-cell", "--max-parallel", "--checkpoint-every") and \
                value != int(value):
            raise SweepError(f"{name} {value!r}: give a whole number")
    if importlib.util.find_spec("submitit") is None:
        raise SweepError("submitit is not installed: `pip install -e '.[cluster]'` (or '.[dev]')")


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def check_partition(wanted: str | None) -> str:
    """`wanted` if the cluster has it (`sinfo -h -o %P`), or the default partition; accounting checked."""
    if shutil.which("sinfo") is None:
        raise SweepError("--executor slurm: `sinfo` not found, this machine is not a SLURM submit host "
                         "(use --executor local to run the cells here)")
    try:
        out = _run(["sinfo", "-h", "-o", "%P"])
        acct = _run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"]) if shutil.which("sacct") else None
    except (subprocess.TimeoutExpired, OSError) as e:
        raise SweepError(f"--executor slurm: the SLURM commands do not answer: {e}") from None
    if out.returncode:
        raise SweepError(f"--executor slurm: sinfo fails: {out.stderr.strip() or out.returncode}")
    names = [p.strip() for p in out.stdout.split()]
    default = next((p[:-1] for p in names if p.endswith("*")), None)
    partitions = sorted({p.rstrip("*") for p in names})
    if wanted is None:
        if default is None:
            raise SweepError(f"--executor slurm: the cluster has no default partition; give --slurm-partition "
                             f"({', '.join(partitions)})")
        wanted = default
    elif wanted not in partitions:
        raise SweepError(f"--slurm-partition {wanted!r}: no such partition; accepted: {', '.join(partitions)}")
    if acct is None or acct.returncode:
        why = "not found" if acct is None else (acct.stderr.strip() or f"exit {acct.returncode}")
        raise SweepError(f"--executor slurm: `sacct` fails ({why}); submitit reads job states from SLURM's "
                         "accounting, without it a cancelled job would never be noticed")
    return wanted


def check_resources(partition: str, cpus_per_cell: int, gpus_per_cell: int) -> None:
    """Refuse a cell that no node of `partition` can hold (it would wait in the queue forever)."""
    try:
        lines = _run(["sinfo", "-h", "-N", "-p", partition, "-o", "%c|%G"]).stdout.split()
    except (subprocess.TimeoutExpired, OSError):
        return
    nodes = []
    for line in lines:
        cpus, _, gres = line.partition("|")
        gpus = 0
        for item in gres.split(","):
            fields = item.split("(")[0].split(":")
            if fields[0] == "gpu":
                gpus = max(gpus, int(fields[-1]) if fields[-1].isdigit() else 1)
        if cpus.rstrip("+").isdigit():
            nodes.append((int(cpus.rstrip("+")), gpus))
    if not nodes:
        return
    most_cpus, most_gpus = max(n[0] for n in nodes), max(n[1] for n in nodes)
    if cpus_per_cell > most_cpus:
        raise SweepError(f"--cpus-per-cell {cpus_per_cell}: the nodes of partition {partition!r} have at most "
                         f"{most_cpus} CPUs")
    if gpus_per_cell > most_gpus:
        raise SweepError(f"--gpus-per-cell {gpus_per_cell}: the nodes of partition {partition!r} have "
                         + (f"at most {most_gpus} GPUs" if most_gpus else "no GPUs (no gres gpu)"))


def partition_hosts(partition: str) -> set[str]:
    """The short host names of `partition`'s nodes (empty if they cannot be read)."""
    try:
        nodes = _run(["sinfo", "-h", "-p", partition, "-o", "%N"]).stdout.split()
        if not nodes:
            return set()
        names = _run(["scontrol", "show", "hostnames", ",".join(nodes)]).stdout.split()
    except (subprocess.TimeoutExpired, OSError):
        return set()
    return {n.split(".")[0] for n in names}


def check_writable(folder: Path, what: str, make: bool = True) -> None:
    """This process can create and remove a file in `folder` (made if missing when `make`; else its nearest
    existing parent must let it be made): `workbench.checks.check_writable_dir`, refusing with SweepError."""
    from workbench.checks import BadValue, check_writable_dir

    try:
        check_writable_dir(folder, what, make=make)
    except BadValue as e:
        raise SweepError(str(e)) from None


def node_local(folder: Path) -> str | None:
    """Why `folder` lives on a file system only this machine sees (tmpfs, /tmp), or None."""
    path = folder.resolve()
    best, fstype = "", ""
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (str(path) + "/").startswith(parts[1].rstrip("/") + "/") and \
                    len(parts[1]) > len(best):
                best, fstype = parts[1], parts[2]
    except OSError:
        pass
    if fstype in LOCAL_FS:
        return f"it is on {fstype} ({best}), memory of this machine"
    for d in LOCAL_DIRS:
        if str(path) == d or str(path).startswith(d + "/"):
            return f"it is under {d}, a folder of this machine's own disk"
    return None


def check_shared(folder: Path, what: str, partition: str) -> None:
    """On SLURM: refuse a folder only this machine sees when the partition has nodes besides this one."""
    why = node_local(folder)
    if why is None:
        return
    hosts = partition_hosts(partition)
    here = {socket.gethostname().split(".")[0]}
    if hosts and hosts <= here:
        return  # the partition's one node is this machine: it sees the folder
    raise SweepError(f"{what} {folder}: the nodes of partition {partition!r} ({', '.join(sorted(hosts)) or '?'}) "
                     f"cannot write it: {why}. Put it on a file system the nodes share (set WORKBENCH_CACHE, "
                     "--folder)")


def device_type(cfg: Any, gpus_per_cell: int, executor: str) -> str:
    """The device type the cells will run on (it is part of their cache key)."""
    name = getattr(cfg, "device", None)
    if name is None:
        kind = "cuda" if gpus_per_cell > 0 else "cpu"
    else:
        import torch

        try:
            kind = torch.device(name).type
        except (RuntimeError, TypeError) as e:
            raise SweepError(f"device={name!r} is not a device: {e}") from None
        if kind == "cuda" and gpus_per_cell < 1:
            raise SweepError(f"device={name!r} needs a GPU per cell: give --gpus-per-cell 1 (or more)")
    if executor == "local" and gpus_per_cell > 0:
        import torch

        if torch.cuda.device_count() < gpus_per_cell:
            raise SweepError(f"--gpus-per-cell {gpus_per_cell} with --executor local: this machine has "
                             f"{torch.cuda.device_count()} GPU(s)")
    return kind


# ------------------------------------------------------------------------------------------------ the sweep
def sweep(notebook: str | Path, params: dict | None = None, quick: bool = False, executor: str = "local",
          slurm_partition: str | None = None, gpus_per_cell: int = 0, cpus_per_cell: int = 1,
          timeout_min: float = 60, max_parallel: int | None = None, folder: str | Path | None = None, *,
          mem_gb: float | None = None, job_name: str | None = None, poll_s: float | None = None,
          say: Callable[[str], None] | None = None, checkpoint_every: int = CHECKPOINT_EVERY) -> SweepReport:
    """Run notebook `notebook`'s study cells that the cache lacks as submitit jobs; see the module doc.

    `max_parallel`: cells running at once (SLURM: the array's `%K`; default: no limit there, 1 locally).
    `folder`: submitit's folder (job pickles and logs; default: <cache root>/sweeps/<study>-<time>).
    `checkpoint_every`: steps between a cell's training checkpoints, from which a requeued job resumes (0: none).
    Raises SweepError (nothing submitted) on bad input; returns the report (`exit_code` 1 if a cell failed)."""
    check_settings(executor, gpus_per_cell, cpus_per_cell, timeout_min, max_parallel, mem_gb, checkpoint_every)
    if executor == "slurm":
        slurm_partition = check_partition(slurm_partition)
    elif slurm_partition is not None:
        raise SweepError("--slurm-partition is for --executor slurm")
    target = notebook_target(notebook, params, quick)
    return sweep_study(target.module, target.cfg, executor=executor, slurm_partition=slurm_partition,
                       gpus_per_cell=gpus_per_cell, cpus_per_cell=cpus_per_cell, timeout_min=timeout_min,
                       max_parallel=max_parallel, folder=folder, mem_gb=mem_gb, job_name=job_name, poll_s=poll_s,
                       say=say, checkpoint_every=checkpoint_every, _partition_checked=executor == "slurm")


def sweep_study(module: str, cfg: Any, *, executor: str = "local", slurm_partition: str | None = None,
                gpus_per_cell: int = 0, cpus_per_cell: int = 1, timeout_min: float = 60,
                max_parallel: int | None = None, folder: str | Path | None = None, mem_gb: float | None = None,
                job_name: str | None = None, poll_s: float | None = None, say: Callable[[str], None] | None = None,
                checkpoint_every: int = CHECKPOINT_EVERY, _partition_checked: bool = False) -> SweepReport:
    """`sweep` for a study module (`workbench.studies.X`, with `STUDY`) and a Config built already."""
    from workbench.studies.kit.cache import cache_root

    say = say or _print
    check_settings(executor, gpus_per_cell, cpus_per_cell, timeout_min, max_parallel, mem_gb, checkpoint_every)
    if executor == "slurm" and not _partition_checked:
        slurm_partition = check_partition(slurm_partition)
    kind = device_type(cfg, gpus_per_cell, executor)
    mod = _import_study(module, module)
    root = cache_root().resolve()  # WORKBENCH_CACHE checked (a bad value: BadValue, exit 2), as cache_dir has it
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(folder).resolve() if folder else root / "sweeps" / f"{mod.STUDY.name}-{stamp}-{uuid.uuid4().hex[:4]}"
    if executor == "slurm":
        check_resources(slurm_partition, cpus_per_cell, gpus_per_cell)
        check_shared(root, "the cell cache (WORKBENCH_CACHE)", slurm_partition)
        check_shared(folder, "the sweep folder", slurm_partition)
    check_writable(folder, "the sweep folder", make=False)  # made when the first job is submitted
    check_writable(root / mod.STUDY.name, "the cell cache")  # after the folder: nothing is made before a refusal
    t0 = time.monotonic()
    plan = plan_cells(module, cfg, kind)
    name = plan.study.title or plan.study.name
    report = SweepReport(plan.study.name, executor, plan.cache.folder, folder, len(plan.cells),
                         len(plan.cells) - len(plan.pending))
    say(f"sweep {name}: {len(plan.cells)} cells planned, {report.cached} already in the cache "
        f"({plan.cache.folder}); {len(plan.pending)} to run"
        + (f" in {len(plan.waves)} waves (cells after the cells they need)" if len(plan.waves) > 1 else ""))
    if not plan.pending:
        say("nothing to submit: every cell is cached; the notebook reads them from the cache")
        return report
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster=executor)
    settings: dict[str, Any] = {"timeout_min": int(max(1, round(timeout_min))), "cpus_per_task": int(cpus_per_cell),
                                "name": job_name or f"workbench-{plan.study.name}"}
    if gpus_per_cell:
        settings["gpus_per_node"] = int(gpus_per_cell)
    if mem_gb is not None:
        settings["mem_gb"] = mem_gb
    if executor == "slurm":
        settings["slurm_partition"] = slurm_partition
        if timeout_min < 15:  # submitit signals (USR2: checkpoint and requeue) 90 s before the limit by default
            settings["slurm_signal_delay_s"] = max(10, int(60 * settings["timeout_min"] * 0.1))
        if max_parallel is not None:
            settings["slurm_array_parallelism"] = int(max_parallel)
    ex.update_parameters(**settings)
    say(f"  {executor}" + (f" partition {slurm_partition}" if executor == "slurm" else "")
        + f", per cell: {cpus_per_cell} CPU(s), {gpus_per_cell} GPU(s), {settings['timeout_min']} min, "
        + (f"training checkpointed every {checkpoint_every} steps; " if checkpoint_every else "no checkpoints; ")
        + f"job files and logs in {folder}")
    job = lambda c: CellJob(module, plan.cfg, c, executor, plan.cache.key, str(root), kind, int(checkpoint_every))
    limit = max_parallel if max_parallel is not None else (None if executor == "slurm" else 1)
    poll = poll_s if poll_s is not None else (2.0 if executor == "slurm" else 0.5)
    runs = report.runs
    todo, cells, first = plan.pending, plan.cells, 0
    try:
        while todo:  # round 1: the planned cells; round 2: the headline claims' cells on claim_seeds, chosen
            # from round 1's rows (they become known once every planned cell is cached)
            ws = waves(plan.study, todo, cells)
            round_runs = [CellRun(c, first + w) for w, wave in enumerate(ws) for c in wave]
            runs += round_runs
            for w in range(first, first + len(ws)):
                wave = [r for r in round_runs if r.wave == w]
                for r in wave:
                    failed = [d.id for d in plan.study.depends_on(r.cell, cells)
                              if any(o.cell == d and o.status in ("failed", "skipped") for o in runs)]
                    if failed:
                        r.status, r.error = "skipped", f"needs {', '.join(failed)}, which failed"
                        say(f"SKIPPED {r.cell.id}: {r.error}")
                _run_wave(ex, executor, [r for r in wave if r.status == "waiting"], job, limit, poll, runs, say)
            first += len(ws)
            tried = {r.cell for r in runs}
            cells = plan.study.sweep_cells(plan.cfg, plan.ctx, plan.cache)
            todo = [c for c in plan.study.pending(plan.cfg, plan.ctx, device_type=kind) if c not in tried]
            if todo:
                seeds = tuple(getattr(plan.cfg, "claim_seeds", ()))
                asks = ", ".join(f"{c.id} {c.seeds}" for c in plan.study.claims if c.headline and c.seeds)
                say(f"sweep {name}: the headline claims' cells on claim_seeds {seeds}"
                    + (f" (and up to the seeds a claim asks for in all: {asks})" if asks else "")
                    + f", chosen from the cells above: {len(todo)} more to run")
    except KeyboardInterrupt:
        live = [r.job_id for r in runs if r.status in ("queued", "running")]
        if executor == "slurm" and live:
            say(f"interrupted: {len(live)} job(s) stay on the cluster (scancel {' '.join(live)} stops them); their "
                "cells still reach the cache")
        say("interrupted: rerun the same command to submit only the cells still missing")
        raise
    report.seconds = round(time.monotonic() - t0, 1)
    report.planned = len(cells)
    report.cached = len(cells) - len({r.cell for r in runs})
    missing = set(plan.study.pending(plan.cfg, plan.ctx, device_type=kind)) if report.done else set()
    for r in runs:  # a job that says done must have left its cell in the cache
        if r.status == "done" and r.cell in missing:
            r.status, r.error = "failed", "the job finished but its cell is not in the cache"
            say(f"FAILED {r.cell.id}: {r.error} ({plan.cache.folder})")
    say(f"sweep {name}: {len(report.done)} done, {len(report.failed)} failed, {len(report.skipped)} skipped, "
        f"{report.cached} were cached; {report.seconds:.1f} s")
    if report.ok:
        say(f"every cell is in the cache ({plan.cache.folder}): the notebook now reads them from it")
    else:
        say("rerun the same command to submit only the cells still missing")
    return report


def _run_wave(ex: Any, executor: str, wave: list[CellRun], job: Callable[[Any], CellJob], limit: int | None,
              poll: float, runs: list[CellRun], say: Callable[[str], None]) -> None:
    """Submit `wave` (all at once as an array where the scheduler throttles it, else `limit` at a time) and
    follow it until every cell is done or failed."""
    if not wave:
        return
    if executor == "slurm":
        try:
            with ex.batch():
                for r in wave:
                    r.job = ex.submit(job(r.cell))
        except Exception as e:  # sbatch refused the array (an invalid request the checks did not catch)
            if not any(o.job_id for o in runs):
                raise SweepError(f"sbatch refused the job array, nothing was submitted: {e}") from None
            for r in wave:
                r.job, r.status, r.error = None, "failed", f"sbatch refused the job array: {e}"
            say(f"FAILED {', '.join(r.cell.id for r in wave)}: sbatch refused the job array: {e}")
            return
        for r in wave:
            r.status, r.job_id = "queued", str(r.job.job_id)
        say(f"  submitted {len(wave)} cell(s) as job array {wave[0].job_id.split('_')[0]}")
    last = None
    while True:
        if executor != "slurm":  # local: start cells as slots free up
            active = sum(r.status == "running" for r in wave)
            for r in wave:
                if r.status == "waiting" and (limit is None or active < limit):
                    r.job = ex.submit(job(r.cell))
                    r.status, r.job_id = "running", str(r.job.job_id)
                    active += 1
        elif any(r.status in ("queued", "running") for r in wave):
            wave[0].job.watcher.update()  # one sacct call for every job of the sweep
        for r in wave:
            if r.status in ("queued", "running"):
                _follow(r, say)
        counts = _counts(runs)
        if counts != last:
            say("  " + ", ".join(f"{n} {k}" for k, n in counts.items()))
            last = counts
        if all(r.status in ("done", "failed", "skipped") for r in wave):
            return
        time.sleep(poll)


def _follow(r: CellRun, say: Callable[[str], None]) -> None:
    job = r.job
    if not job.done():
        state = str(job.state).split()[0].upper() if job.state else "UNKNOWN"
        r.status = "queued" if state in QUEUED else "running"
        return
    error = job.exception()  # None: it returned; FailedJobError: it raised; UncompletedJobError: no result
    r.log = str(job.paths.stderr)
    if error is None:
        r.status = "done"
        return
    r.status = "failed"
    state = job.state if job.state else "?"
    r.error = _trace(str(error))
    say(f"FAILED {r.cell.id} (job {r.job_id}, {state}):\n{_indent(r.error)}\n  log: {r.log}")


def _trace(message: str) -> str:
    """The part of a submitit error that says what happened (the cell's traceback, or why no result came)."""
    lines = message.strip().splitlines()
    if "----------------------" in lines:  # FailedJobError: the trace between two rulers
        a = lines.index("----------------------")
        b = next((i for i in range(a + 1, len(lines)) if lines[i] == "----------------------"), len(lines))
        return "\n".join(lines[a + 1:b]).strip()
    return "\n".join(lines[:40])


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.splitlines())


def _counts(runs: Sequence[CellRun]) -> dict[str, int]:
    order = ("waiting", "queued", "running", "done", "failed", "skipped")
    counts = {k: sum(r.status == k for r in runs) for k in order}
    counts["queued"] += counts.pop("waiting")
    return {k: n for k, n in counts.items() if n or k in ("queued", "running", "done", "failed")}


def _print(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------------------------------------ the command
def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`workbench sweep NB ...` on `subparsers` (argparse's add_subparsers())."""
    p = subparsers.add_parser(
        "sweep", help="run a notebook's study cells as submitit jobs (local or SLURM) into the cell cache",
        description="Plan the notebook's study cells from its parameters exactly as the notebook would, submit "
                    "the ones the cell cache lacks as a submitit job array (cells that need others after them), "
                    "follow them, and leave every finished cell in the cache: `workbench run NB` with the same "
                    "parameters then reads every cell from it. Exit 0 when every cell is done, 1 when one failed, "
                    "2 on bad input (nothing submitted).")
    p.add_argument("notebook", metavar="NOTEBOOK", help="stem (02_cp_rank_ablation), number (02) or path")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter of the notebook's parameters cell, as for `workbench run`")
    p.add_argument("--quick", action="store_true", help="the study's quick preset, as `workbench run --quick`")
    p.add_argument("--executor", default="local", help="local (subprocesses here) or slurm (default: local)")
    p.add_argument("--slurm-partition", default=None, metavar="P", help="default: the cluster's default partition")
    p.add_argument("--gpus-per-cell", type=int, default=0, metavar="N", help="GPUs per cell (default 0: CPU)")
    p.add_argument("--cpus-per-cell", type=int, default=1, metavar="N", help="CPU cores per cell (default 1)")
    p.add_argument("--mem-gb", type=float, default=None, metavar="G", help="memory per cell (default: the "
                   "partition's)")
    p.add_argument("--timeout-min", type=float, default=60, metavar="M",
                   help="time limit per cell job; a job that hits it (or is preempted) is requeued (default 60)")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY, metavar="N",
                   help=f"steps between a cell's training checkpoints: a requeued job resumes its cell from the last "
                        f"one (studies 01, 02; 03 and 04 restart their cells); 0: none (default {CHECKPOINT_EVERY})")
    p.add_argument("--max-parallel", type=int, default=None, metavar="K",
                   help="cells running at once (default: no limit on SLURM, 1 locally)")
    p.add_argument("--folder", type=Path, default=None, help="submitit's job files and logs (default: "
                   "<cache root>/sweeps/<study>-<time>; on SLURM on a file system the nodes share)")
    p.set_defaults(func=cmd_sweep)
    return p


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.runner import parse_value

    params: dict[str, Any] = {}
    try:
        for name, value in args.param:
            if name in params:
                raise SweepError(f"parameter {name!r} given twice (-p {name} ...)")
            params[name] = parse_value(value, name)
        report = sweep(args.notebook, params, quick=args.quick, executor=args.executor,
                       slurm_partition=args.slurm_partition, gpus_per_cell=args.gpus_per_cell,
                       cpus_per_cell=args.cpus_per_cell, timeout_min=args.timeout_min,
                       max_parallel=args.max_parallel, folder=args.folder, mem_gb=args.mem_gb,
                       checkpoint_every=args.checkpoint_every)
    except SweepError as e:
        print(f"workbench sweep: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # parse_value's malformed literal
        print(f"workbench sweep: error: {e}", file=sys.stderr)
        return 2
    return report.exit_code


__all__ = ["CHECKPOINT_EVERY", "EXECUTORS", "CellJob", "CellRun", "Plan", "SweepError", "SweepReport", "Target",
           "add_parser", "check_partition", "check_settings", "cmd_sweep", "notebook_target", "plan_cells", "sweep",
           "sweep_study", "waves"]
