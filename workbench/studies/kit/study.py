"""A study, declared once: `Study(...)` holds what is the study's own, `Study.run(cfg)` does the rest.

    STUDY = kit.Study(
        name="codebook", config=Config, methods=METHODS, cache_skip=CACHE_SKIP, version=1, quick=QUICK,
        context=build_context,      # (cfg, use_cache=, progress=, **kwargs) -> the shared context (model, data)
        report=report,              # (ctx, rows, verdicts) -> kit.Report (tables, findings, figures' data)
        claims=CLAIMS, result=Result, order="method")
    result = STUDY.run(STUDY.preset(quick=True))

`run` plans the cells from the registry (each method over the Config field its `sweep` names, for
every seed unless it is unseeded), reads finished cells from the cache (keyed by the config minus
the skip list, the context's weight and data fingerprints, the device type and the version), runs
the rest with progress, judges the claims, and builds the study's `Result` once, with everything.

The context a study builds carries (as attributes) `weights` (a fingerprint of the model that
decides cells), `data_key` (a fingerprint of the data, or None), and optionally `bind(cache)` (told the
cell cache before any cell runs), `needs(cell)` (files a cached cell is only valid with), `done(cell,
metrics)` (told every finished cell, cached or computed, in plan order) and settings that depend on
the model (study 02's `lora_ranks`).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .cache import CellCache
from .cells import Cell, run_cells
from .claims import Claim, Verdict, family, judge
from .registry import Registry
from .result import Result, device, output_dir, preset


@dataclass
class Report:
    """What a study's `report` makes of its cells: everything its Result carries besides the cells."""

    tables: dict[str, list[dict]] = field(default_factory=dict)
    findings: str = ""
    headline: str = ""
    main_table: str | None = None
    percent: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the study's own Result fields (models, snapshots)
    rows: list[dict] | None = None  # the rows as the Result keeps them, when the report reshapes them


@dataclass(frozen=True)
class Study:
    name: str
    config: type
    methods: Registry
    context: Callable[..., Any]
    report: Callable[[Any, list[dict], list[Verdict]], Report]
    cache_skip: tuple[str, ...] = ()
    version: int = 1
    quick: Mapping[str, Any] = field(default_factory=dict)
    claims: tuple[Claim, ...] = ()
    result: type = Result
    order: str = "method"  # "method": a method's cells together; "seed": a seed's cells together
    title: str = ""
    # the rows of derived methods (computed from what they need, never run as cells): (ctx, rows) -> all rows
    derive: Callable[[Any, list[dict]], list[dict]] | None = None

    def __post_init__(self):
        if self.order not in ("method", "seed"):
            raise ValueError(f"{self.name}: order={self.order!r}; accepted: 'method', 'seed'")
        known = set(self.methods)
        for c in self.claims:
            missing = c.methods() - known
            if missing:
                raise ValueError(f"{self.name}: claim {c.id} compares {sorted(missing)}, which are not registered")

    # ------------------------------------------------------------------------------------ config
    def preset(self, quick: bool = False, **overrides: Any) -> Any:
        """The Config, shrunk by the study's quick preset when `quick`; None values keep the default."""
        return preset(self.config, quick, dict(self.quick), overrides)

    def method_ids(self, cfg: Any) -> tuple[str, ...]:
        """cfg.methods resolved: "all" is every registered method not marked optional; ids are checked."""
        return self.methods.check(cfg.methods)

    def resolve(self, cfg: Any) -> Any:
        """`cfg` with its methods resolved to ids ("all" spelled out), checked against the registry."""
        ids = self.method_ids(cfg)
        return cfg if ids == cfg.methods else dataclasses.replace(cfg, methods=ids)

    # ------------------------------------------------------------------------------------ cells
    def settings(self, method: str, cfg: Any, ctx: Any = None) -> tuple[Any, ...]:
        """The settings `method` runs at: the values of the Config field (or context attribute) its sweep names."""
        sweep = self.methods[method].sweep
        if sweep is None:
            return (None,)
        source = ctx if ctx is not None and hasattr(ctx, sweep) else cfg
        value = getattr(source, sweep)
        return tuple(value) if isinstance(value, (tuple, list)) else (value,)

    def plan(self, cfg: Any, ctx: Any = None) -> list[Cell]:
        """Every cell the config asks for: each method (and what it needs) over its settings and seeds."""
        ids = [m for m in self.methods.with_needs(self.method_ids(cfg)) if not self.methods[m].derived]
        unseeded = [Cell(m, s) for m in ids if not self.methods[m].seeded for s in self.settings(m, cfg, ctx)]
        seeded = [m for m in ids if self.methods[m].seeded]
        if self.order == "seed":
            cells = [Cell(m, s, seed) for seed in cfg.seeds for m in seeded for s in self.settings(m, cfg, ctx)]
        else:
            cells = [Cell(m, s, seed) for m in seeded for s in self.settings(m, cfg, ctx) for seed in cfg.seeds]
        return unseeded + cells

    def cache(self, cfg: Any, ctx: Any, enabled: bool = True) -> CellCache:
        return CellCache(self.name, cfg, skip=self.cache_skip, weights=ctx.weights, data=getattr(ctx, "data_key", None),
                         device=device(getattr(cfg, "device", None)).type, version=self.version, enabled=enabled)

    # ------------------------------------------------------------------------------------ run
    def run(self, cfg: Any = None, output_dir: str | Path | None = None, progress: bool = True,
            use_cache: bool = True, **context: Any) -> Any:
        """Run (or resume) every cell, judge the claims, summarise, write result.json; returns the Result.

        `context`: passed to the study's context builder (an already loaded `model`, say)."""
        cfg = self.resolve(cfg if cfg is not None else self.config())  # unknown ids fail before any work
        t0 = time.perf_counter()
        out = _output_dir(output_dir, self.name)
        ctx = self.context(cfg, use_cache=use_cache, progress=progress, **context)
        cache = self.cache(cfg, ctx, use_cache)
        if hasattr(ctx, "bind"):
            ctx.bind(cache)
        rows = run_cells(self.plan(cfg, ctx), lambda c: self.methods[c.method].run(ctx, c), cache=cache,
                         needs=getattr(ctx, "needs", None), desc=self.title or self.name, progress=progress,
                         done=getattr(ctx, "done", None))
        if self.derive is not None:
            rows = self.derive(ctx, rows)
        verdicts = judge(self.claims, rows, cfg)
        rep = self.report(ctx, rows, verdicts)
        rows = rep.rows if rep.rows is not None else rows
        trained = sum(not r.get("cached", False) for r in rows)
        timings = {"total": round(time.perf_counter() - t0, 2),
                   "train": round(sum(r.get("train_seconds") or 0 for r in rows), 2)}
        result = self.result(study=self.name, config=cfg, output_dir=out, rows=rows, tables=rep.tables,
                             findings=rep.findings, headline=rep.headline, main_table=rep.main_table,
                             percent=tuple(rep.percent), timings=timings,
                             metrics={"cells_trained": trained, "cells_cached": len(rows) - trained, **rep.metrics},
                             claims=[v.row(self.name) for v in verdicts], claims_family=family(verdicts),
                             verdicts=verdicts, **rep.extra)
        result.write()
        return result

    # ------------------------------------------------------------------------------------ one cell at a time
    # (a sweep on a cluster: `pending` on the submitting machine, `run_one` in each job; what they write into
    # the cell cache is what `run` writes, so the notebook afterwards reads every cell from the cache)
    def depends_on(self, cell: Cell, cells: Sequence[Cell]) -> list[Cell]:
        """The cells of `cells` that `cell` needs first (its method's registry `needs`, transitively: the
        same seed's cells, and unseeded ones), in the order of `cells`."""
        want = set(self.methods.with_needs([cell.method])) - {cell.method}
        return [c for c in cells if c != cell and c.method in want
                and (c.seed is None or cell.seed is None or c.seed == cell.seed)]

    def cell_cache(self, cfg: Any, ctx: Any, enabled: bool = True, device_type: str | None = None) -> CellCache:
        """`cache(cfg, ctx)`; with `device_type` ("cuda"), the cache of cells that run on that device type
        (planned on a machine without it: a login node planning GPU jobs)."""
        if device_type is None:
            return self.cache(cfg, ctx, enabled)
        return CellCache(self.name, cfg, skip=self.cache_skip, weights=ctx.weights, data=getattr(ctx, "data_key", None),
                         device=device_type, version=self.version, enabled=enabled)

    def pending(self, cfg: Any, ctx: Any = None, device_type: str | None = None) -> list[Cell]:
        """The planned cells that the cache does not hold (in plan order): what a sweep still has to run.

        `ctx`: the study's context, if already built (else built here, without progress output)."""
        cfg = self.resolve(cfg)
        if ctx is None:
            ctx = self.context(cfg, use_cache=True, progress=False)
        cache = self.cell_cache(cfg, ctx, device_type=device_type)
        if hasattr(ctx, "bind"):
            ctx.bind(cache)
        needs = getattr(ctx, "needs", None)
        return [c for c in self.plan(cfg, ctx) if cache.load(c, needs(c) if needs else ()) is None]

    def run_one(self, cfg: Any, cell: Cell, use_cache: bool = True, *, executor: str = "in-process",
                key: str | None = None) -> dict:
        """Run one planned cell (unless cached), save it to the cache as `run` does, return its metrics.

        The context is built as `run` builds it (without progress) and told (`done`) the cells this one
        needs (registry `needs`), in plan order, from the cache (computed here if missing), as `run` would
        have told it. `executor` is recorded in the cell's where.json; `key`: the cache key the caller
        planned with -- a different key here (other weights, data or device type) is an error before any
        cell runs."""
        cfg = self.resolve(cfg)
        ctx = self.context(cfg, use_cache=use_cache, progress=False)
        cache = self.cache(cfg, ctx, use_cache)
        if key is not None and cache.key != key:
            raise RuntimeError(
                f"{self.name}: the cell cache key here is {cache.key}, the sweep planned {key}: the model weights, "
                f"the data or the device type differ on this machine (here: {device(getattr(cfg, 'device', None))})")
        cache.executor = executor
        if hasattr(ctx, "bind"):
            ctx.bind(cache)
        plan = self.plan(cfg, ctx)
        if cell not in plan:
            raise ValueError(f"{self.name}: cell {cell.id} is not planned by this config; planned: "
                             f"{', '.join(c.id for c in plan)}")
        got: dict[Cell, dict] = {}
        told = getattr(ctx, "done", None)

        def done(c: Cell, metrics: dict) -> None:
            got[c] = metrics
            if told is not None:
                told(c, metrics)

        run_cells([*self.depends_on(cell, plan), cell], lambda c: self.methods[c.method].run(ctx, c), cache=cache,
                  needs=getattr(ctx, "needs", None), desc=self.title or self.name, progress=False, done=done)
        return got[cell]


def _output_dir(path: str | Path | None, study: str) -> Path:
    return output_dir(path, study)


def seeds_of(rows: Sequence[dict]) -> list[int]:
    return sorted({r["seed"] for r in rows if r.get("seed") is not None})
