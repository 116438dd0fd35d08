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
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .cache import CellCache
from .cache import checkpoint_every as checkpoint_interval  # run_one has a parameter named checkpoint_every
from .cells import Cell, run_cells, say
from .claims import ALPHA, Claim, Verdict, family, judge
from .registry import Registry
from .result import Result, device, preset
from .result import output_dir as make_output_dir  # `run` has a parameter named output_dir


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

    # ------------------------------------------------------------------------------------ seeds for claims
    def claim_cells(self, cfg: Any, ctx: Any, rows: list[dict], claims: Sequence[Claim],
                    seeds: Sequence[int]) -> list[Cell]:
        """The cells (and what they need, same seed) that `claims`' comparisons read, on `seeds`, not yet in `rows`."""
        have = {(r["method"], r.get("setting"), r.get("seed")) for r in rows}
        chosen = set(self.methods.with_needs(self.method_ids(cfg)))  # a method left out gets no claim seeds
        want: list[Cell] = []
        for claim in claims:
            sides = self._claim_sides(claim, rows, cfg)
            if any(method not in chosen for method, _ in sides):
                continue  # a side's method was left out: the claim cannot be judged, so no seeds for it
            for method, setting in sides:
                spec = self.methods[method]
                if not spec.seeded:
                    continue
                for seed in seeds:
                    for m in self.methods.with_needs([method]):
                        if self.methods[m].derived or not self.methods[m].seeded:
                            continue
                        sets = (setting,) if m == method else self.settings(m, cfg, ctx)
                        for st in sets:
                            cell = Cell(m, st, seed)
                            if (m, st, seed) not in have and cell not in want:
                                want.append(cell)
        return want

    def headline_seeds(self, cfg: Any, claim: Claim) -> tuple[int, ...]:
        """The seeds a headline claim's cells run on beyond `cfg.seeds`: `cfg.claim_seeds`, then, for a claim
        that declares `seeds=N` (cheap cells), the seeds after the highest in use until they are N in all.
        No claim seeds (claim_seeds=(), quick mode): none."""
        extra = tuple(getattr(cfg, "claim_seeds", ()) or ())
        if not extra or claim.seeds is None:
            return extra
        used = set(cfg.seeds) | set(extra)
        start = max(used) + 1
        return extra + tuple(range(start, start + max(0, claim.seeds - len(used))))

    def headline_cells(self, cfg: Any, ctx: Any, rows: list[dict]) -> list[Cell]:
        """The headline claims' cells on their seeds (`headline_seeds`), not yet in `rows`, claim by claim."""
        want: list[Cell] = []
        for claim in self.claims:
            if claim.headline:
                want += [c for c in self.claim_cells(cfg, ctx, rows, [claim], self.headline_seeds(cfg, claim))
                         if c not in want]
        return want

    def _claim_sides(self, claim: Claim, rows: list[dict], cfg: Any) -> list[tuple[str, Any]]:
        """(method, setting) of each side a claim compares (a derived method: what it needs)."""
        if claim.out_of_scope:
            return []
        try:
            sides = claim.cells if claim.cells else claim.sides(rows, cfg)
        except KeyError:  # a side chosen from rows that are not there (the method did not run)
            return []
        out = []
        for side in sides:
            method, setting = (side, None) if isinstance(side, str) else side
            if method not in self.methods:
                continue
            if self.methods[method].derived:
                out += [(m, None) for m in self.methods[method].needs if self.methods[m].seeded]
            else:
                out.append((method, setting))
        return out

    def _until_resolved(self, cfg: Any, ctx: Any, rows: list[dict], cells: Callable[[list[Cell]], list[dict]],
                        alpha: float, budget_minutes: float | None, t0: float, progress: bool):
        """Looks 1..MAX_LOOKS: judge at `alpha`; add SEED_BATCH seeds to the cells of claims still unresolved.
        The last look records why it stopped (`stopped`): every claim resolved, the last look, the budget
        spent, or the next batch, assumed to cost what the last one did, would pass the budget."""
        looks = []
        used = sorted({r["seed"] for r in rows if r.get("seed") is not None})
        next_seed = (max(used) + 1) if used else 0
        batch = None  # minutes the last batch of seeds cost (its training time where it came from the cache)
        for look in range(1, MAX_LOOKS + 1):
            rows_d = self.derive(ctx, rows) if self.derive is not None else rows
            verdicts = judge(self.claims, rows_d, cfg, alpha)
            open_ = [v.claim for v in verdicts if v.verdict == "unresolved"]
            minutes = (time.perf_counter() - t0) / 60
            looks.append({"look": look, "open": [c.id for c in open_], "minutes": round(minutes, 2),
                          "seeds": len({r["seed"] for r in rows if r.get("seed") is not None})})
            stop = _stop_reason(open_, look, minutes, budget_minutes, batch)
            if progress:
                say(f"    {self.title or self.name}: look {look}/{MAX_LOOKS} at {minutes:.1f} min, "
                    f"{len(open_)} claim(s) open: {', '.join(c.id for c in open_) or 'none'}"
                    + (f"; stopped: {stop}" if stop else ""))
            if stop:
                looks[-1]["stopped"] = stop
                break
            seeds = tuple(range(next_seed, next_seed + SEED_BATCH))
            next_seed += SEED_BATCH
            start = time.perf_counter()
            new = cells(self.claim_cells(cfg, ctx, rows, open_, seeds))
            batch = max(time.perf_counter() - start, sum(r.get("train_seconds") or 0 for r in new)) / 60
            rows = rows + new
        return rows, looks

    # ------------------------------------------------------------------------------------ run
    def run(self, cfg: Any = None, output_dir: str | Path | None = None, progress: bool = True,
            use_cache: bool = True, until_resolved: bool | None = None, budget_minutes: float | None = None,
            **context: Any) -> Any:
        """Run (or resume) every cell, judge the claims, summarise, write result.json; returns the Result.

        The headline claims' cells also run on `cfg.claim_seeds` (seeds where the claims are), and a claim
        that declares `seeds=N` on more, up to N in all (`headline_seeds`). With
        `until_resolved` (or env WORKBENCH_UNTIL_RESOLVED=<minutes>, which `workbench run --until-resolved`
        sets), seeds are added a batch at a time to the cells of claims still unresolved until every claim is
        resolved, `budget_minutes` is spent or `MAX_LOOKS` looks are taken; every look is judged at
        alpha / MAX_LOOKS (Bonferroni over looks), so stopping early keeps the stated error rate.
        `context`: passed to the study's context builder (an already loaded `model`, say). With env
        WORKBENCH_CHECKPOINT_EVERY=N the cells' training runs checkpoint every N steps and an interrupted cell
        resumes on the next run (off by default: `workbench sweep`'s jobs checkpoint, see `run_one`)."""
        cfg = self.resolve(cfg if cfg is not None else self.config())  # unknown ids fail before any work
        until_resolved, budget_minutes = _sequential(until_resolved, budget_minutes)
        every = checkpoint_interval()  # env WORKBENCH_CHECKPOINT_EVERY; unset: no checkpoints (the notebook's timings)
        t0 = time.perf_counter()
        out = make_output_dir(output_dir, self.name)
        ctx = self.context(cfg, use_cache=use_cache, progress=progress, **context)
        cache = self.cache(cfg, ctx, use_cache)
        if hasattr(ctx, "bind"):
            ctx.bind(cache)

        def cells(plan: list[Cell]) -> list[dict]:
            return run_cells(plan, lambda c: self.methods[c.method].run(ctx, c), cache=cache,
                             needs=getattr(ctx, "needs", None), desc=self.title or self.name, progress=progress,
                             done=getattr(ctx, "done", None), checkpoint_every=every)

        rows = cells(self.plan(cfg, ctx))
        rows += cells(self.headline_cells(cfg, ctx, rows))
        alpha, looks = ALPHA, []
        if until_resolved:
            alpha = ALPHA / MAX_LOOKS
            rows, looks = self._until_resolved(cfg, ctx, rows, cells, alpha, budget_minutes, t0, progress)
        rows = self.derive(ctx, rows) if self.derive is not None else rows
        verdicts = judge(self.claims, rows, cfg, alpha)
        rep = self.report(ctx, rows, verdicts)
        rows = rep.rows if rep.rows is not None else rows
        trained = sum(not r.get("cached", False) for r in rows)
        timings = {"total": round(time.perf_counter() - t0, 2),
                   "train": round(sum(r.get("train_seconds") or 0 for r in rows), 2)}
        result = self.result(study=self.name, config=cfg, output_dir=out, rows=rows, tables=rep.tables,
                             findings=rep.findings, headline=rep.headline, main_table=rep.main_table,
                             percent=tuple(rep.percent), timings=timings,
                             metrics={"cells_trained": trained, "cells_cached": len(rows) - trained, **rep.metrics},
                             claims=[v.row(self.name) for v in verdicts],
                             claims_family={**family(verdicts, alpha), "looks": looks,
                                            "seeds": seed_plan(rows, self.claims, cfg)},
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

    def sweep_cells(self, cfg: Any, ctx: Any, cache: CellCache) -> list[Cell]:
        """The cells `run` runs (its sequential mode aside), as far as the cache decides them: the planned cells,
        then -- once every planned cell is cached -- the headline claims' cells on `cfg.claim_seeds`, which `run`
        chooses from the planned cells' rows (a claim's side may be "the best rank")."""
        plan = self.plan(cfg, ctx)
        if not getattr(cfg, "claim_seeds", ()) or not any(c.headline for c in self.claims):
            return plan
        needs = getattr(ctx, "needs", None)
        rows = []
        for c in plan:
            metrics = cache.load(c, needs(c) if needs else ())
            if metrics is None:
                return plan
            rows.append({**c.row(metrics), "cached": True})
        return plan + self.headline_cells(cfg, ctx, rows)

    def pending(self, cfg: Any, ctx: Any = None, device_type: str | None = None) -> list[Cell]:
        """The cells `run` would run that the cache does not hold (in run's order): what a sweep still has to
        run. The planned cells first; once they are all cached, the headline claims' cells on `claim_seeds`.

        `ctx`: the study's context, if already built (else built here, without progress output)."""
        cfg = self.resolve(cfg)
        if ctx is None:
            ctx = self.context(cfg, use_cache=True, progress=False)
        cache = self.cell_cache(cfg, ctx, device_type=device_type)
        if hasattr(ctx, "bind"):
            ctx.bind(cache)
        needs = getattr(ctx, "needs", None)
        return [c for c in self.sweep_cells(cfg, ctx, cache) if cache.load(c, needs(c) if needs else ()) is None]

    def run_one(self, cfg: Any, cell: Cell, use_cache: bool = True, *, executor: str = "in-process",
                key: str | None = None, checkpoint_every: int | None = None) -> dict:
        """Run one of `run`'s cells (unless cached), save it to the cache as `run` does, return its metrics.

        The context is built as `run` builds it (without progress) and told (`done`) the cells this one
        needs (registry `needs`), in run's order, from the cache (computed here if missing), as `run` would
        have told it. `executor` is recorded in the cell's where.json; `key`: the cache key the caller
        planned with -- a different key here (other weights, data or device type) is an error before any
        cell runs. `checkpoint_every` (default: env WORKBENCH_CHECKPOINT_EVERY, else 0: none): steps between
        the checkpoints of the cell's training runs (`kit.checkpoint`); run again after an interruption, the
        cell resumes from its last one, with the numbers of an uninterrupted run."""
        every = checkpoint_interval(checkpoint_every)
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
        cells = self.sweep_cells(cfg, ctx, cache)
        if cell not in cells:
            raise ValueError(f"{self.name}: cell {cell.id} is not one this config runs (now: "
                             f"{', '.join(c.id for c in cells)}; the claims' cells on claim_seeds count once every "
                             "planned cell is cached)")
        got: dict[Cell, dict] = {}
        told = getattr(ctx, "done", None)

        def done(c: Cell, metrics: dict) -> None:
            got[c] = metrics
            if told is not None:
                told(c, metrics)

        run_cells([*self.depends_on(cell, cells), cell], lambda c: self.methods[c.method].run(ctx, c), cache=cache,
                  needs=getattr(ctx, "needs", None), desc=self.title or self.name, progress=False, done=done,
                  checkpoint_every=every)
        return got[cell]


MAX_LOOKS = 4  # sequential mode: at most this many looks, each judged at alpha / MAX_LOOKS
SEED_BATCH = 4  # seeds added per look to the cells of the claims still open
SEQUENTIAL_ENV = "WORKBENCH_UNTIL_RESOLVED"  # minutes of budget ("" or "inf": none); set by `workbench run`


def _stop_reason(open_: Sequence[Any], look: int, minutes: float, budget: float | None,
                 batch: float | None) -> str | None:
    """Why sequential mode stops at this look (None: it adds another batch of seeds)."""
    if not open_:
        return "every claim resolved"
    if look == MAX_LOOKS:
        return f"the last look ({MAX_LOOKS})"
    if budget is not None and minutes >= budget:
        return f"the budget ({budget:g} min) spent"
    if budget is not None and batch is not None and minutes + batch > budget:
        return (f"the next batch of seeds (about {batch:.1f} min, as the last) would pass the budget "
                f"({budget:g} min)")
    return None


def _sequential(until: bool | None, budget: float | None) -> tuple[bool, float | None]:
    env = os.environ.get(SEQUENTIAL_ENV)
    if until is None:
        until = env is not None
    if until and budget is None and env not in (None, "", "inf"):
        budget = float(env)
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"budget_minutes={budget!r}: a positive number of minutes, or None for no budget")
    return bool(until), budget


def seed_plan(rows: Sequence[dict], claims: Sequence[Claim], cfg: Any) -> list[dict]:
    """How many seeds each (method, setting) got, which headline claims it serves and the most seeds one of
    them declares (`Claim.seeds`, or None): the notebook says why."""
    seeds: dict[tuple[str, Any], set] = {}
    for r in rows:
        if r.get("seed") is not None:
            seeds.setdefault((r["method"], r.get("setting")), set()).add(r["seed"])
    serves: dict[tuple[str, Any], list[str]] = {}
    asks: dict[tuple[str, Any], int] = {}
    for c in claims:
        if c.out_of_scope or not c.headline:
            continue
        try:
            sides = c.cells if c.cells else c.sides(rows, cfg)
        except KeyError:
            continue
        for side in sides:
            key = (side, None) if isinstance(side, str) else tuple(side)
            serves.setdefault(key, []).append(c.id)
            if c.seeds is not None:
                asks[key] = max(asks.get(key, 0), c.seeds)
    return [{"method": m, "setting": st, "seeds": len(ss), "headline_claims": serves.get((m, st), []),
             "declared_seeds": asks.get((m, st))} for (m, st), ss in seeds.items()]




def seeds_of(rows: Sequence[dict]) -> list[int]:
    return sorted({r["seed"] for r in rows if r.get("seed") is not None})
