"""How much of this CPU's sgemm peak do the studies' training steps reach, and what do the cheap speedups buy?

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_efficiency.py [--quick] [--repeats 5] [--threads N]
        [--only 01 02 03 04 sweep] [--compile-budget 100] [--sweep-batches 16 64 256]

In one process:

1. the peak: float32 square matmuls (`torch.mm`, 512 .. 2048) on the current torch thread count, a
   median over repeats for each size; the best size's GFLOP/s is the peak every fraction below is of;
2. each study's training step, built with the study's own code at the batch size of its Config:
     01 cam_counterfactual  full FT (CE, image tower + head) and masked distillation (mask_fd: the
                            student's own CAMs, the Config's cam_method), the study's step builders
                            (`robust_ft.methods._BUILDERS`) through the engine's step;
     02 cp_rank_ablation    the contrastive step with mode approximation at R (`--rank`, the study's
                            keep/ablation rank 8) and with peft LoRA at the rank of the nearest
                            parameter count, set up by the study's registry, through the engine's step;
     03 codebook            one Uni-Code training step (`UniCode.step`: all losses, CLUB's inner steps,
                            EMA; then backward and Adam, as `train_unicode`), on standard-normal features
                            of the study's shapes (the study standardises its features);
     04 module_selection    one round of the multi-task training (one batch of each task, each its own
                            AdamW step along its default path, as `train_modular`), k = the Config's default_k;
   FLOPs per step from `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, attention;
   forward and backward: what a step computes in the multiply-adds the peak is made of; the
   element-wise work, norms and optimiser are not counted), seconds per step (a median over
   `--repeats` interleaved rounds after warm-up), achieved GFLOP/s and the fraction of the peak;
   the tiny-world-clip contrastive step (whole model trained) at batch 16, 64, 256 beside them;
3. the cheap speedups on every study step, timed interleaved with its plain step (variant step time /
   plain step time: below 1 is faster): foreach and fused Adam(W) in place of the study's optimiser
   (the engine's `make_optimizer` on a CPU: neither), and `torch.compile` of the step's model (the
   engine's objective; `UniCode.step`; `ModularModel.run`), compiled steps while `--compile-budget`
   seconds of compiling last (a failure is recorded, not fatal; a cold inductor cache takes 20-110 s a
   step here, a warm one a few); and determinism: each variant built twice from seed 0 gives the same
   losses over 3 steps (True/False), and its 3rd loss beside the plain one (a compiled step with dropout,
   mode approximation's or Uni-Code's, draws its masks from inductor's generator: other losses, not wrong ones).

Every step runs inside `trusted_inputs()` (the engine's per-call pixel range check skipped alike for all
variants: it is a graph break for torch.compile). Writes benchmarks/results/bench_efficiency.json with
the machine (`workbench.studies.kit.environment()`).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch.utils.flop_counter import FlopCounterMode

from workbench.engine import TrainConfig, make_optimizer, param_groups, training_step, trusted_inputs
from workbench.models import load_model
from workbench.studies.kit import environment, write_json_atomic

RESULTS = Path(__file__).resolve().parent / "results" / "bench_efficiency.json"
PARTS = ("01", "02", "03", "04", "sweep")
VARIANTS = {"plain": ("plain", False), "foreach": ("foreach", False), "fused": ("fused", False),
            "compiled": ("plain", True)}
DET_STEPS = 3  # steps of each determinism run
ISSUE_FRACTIONS = {16: 0.17, 64: 0.32, 256: 0.39}  # the tiny contrastive step, as the issue reports it
SEED = 0

Step = Callable[[], torch.Tensor]  # one training step; returns its loss (detached)
Maker = Callable[[str, bool], Step]  # (optimizer kind, compiled) -> a fresh step from seed 0


@dataclass
class Case:
    study: str  # "01"
    name: str  # the step, as the table shows it
    batch: int
    unit: str  # what one timed step is
    make: Maker
    variants: tuple[str, ...] = tuple(VARIANTS)


# ---------------------------------------------------------------------------- the peak
def sgemm_peak(sizes: tuple[int, ...], repeats: int) -> dict:
    """float32 GFLOP/s of n x n @ n x n (`torch.mm` into a preallocated output) for each n: the median
    over `repeats` after one warm-up; the peak is the best size's."""
    rows = []
    g = torch.Generator().manual_seed(0)
    for n in sizes:
        a, b, c = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g), torch.empty(n, n)
        torch.mm(a, b, out=c)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b, out=c)
            times.append(time.perf_counter() - t0)
        s = statistics.median(times)
        rows.append({"n": n, "seconds": s, "gflops": 2 * n**3 / s / 1e9, "best_gflops": 2 * n**3 / min(times) / 1e9})
    best = max(rows, key=lambda r: r["gflops"])
    return {"dtype": "float32", "threads": torch.get_num_threads(), "repeats": repeats, "sizes": rows,
            "peak_gflops": best["gflops"], "peak_n": best["n"]}


# ---------------------------------------------------------------------------- steps
def adam(kind: str, params, cls=torch.optim.AdamW, **kw) -> torch.optim.Optimizer:
    """The study's optimiser ("plain": as the study builds it) or its foreach / fused implementation."""
    return cls(params, **kw, **({"foreach": True} if kind == "foreach" else {"fused": True} if kind == "fused" else {}))


def engine_step(acc, objective: torch.nn.Module, batch: dict, lr: float, weight_decay: float, kind: str,
                compiled: bool, grad_clip: float | None = 1.0) -> Step:
    """`workbench.engine.training_step` on one objective and batch, as `engine.train` runs it (prepared by
    accelerate, AdamW with the engine's decay groups, grad clipping; a constant schedule)."""
    named = [(n, p) for n, p in objective.named_parameters() if p.requires_grad]
    cfg = TrainConfig(steps=1, lr=lr, weight_decay=weight_decay, grad_clip=grad_clip)
    if kind == "plain":
        opt = make_optimizer(named, cfg)  # the engine's: on a CPU neither fused nor foreach (torch's default)
    else:
        opt = adam(kind, param_groups(named, weight_decay), lr=lr, betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    model, opt, sched = acc.prepare(objective, opt, sched)
    model.train()
    if compiled:
        model = torch.compile(model)
    clip = [p for _, p in named]

    def step() -> torch.Tensor:
        with trusted_inputs():
            return training_step(acc, model, batch, opt, sched, clip, grad_clip).loss.detach()

    return step


def study01(acc, batch: int) -> list[Case]:
    from workbench.methods.robust_ft import zero_shot_classifier
    from workbench.methods.robust_ft.methods import _BUILDERS  # the study's step builders (private)
    from workbench.studies.cam_counterfactual import Config, build_data

    cfg = Config(batch_size=batch)
    torch.manual_seed(0)  # as the study's build_context
    model = load_model(cfg.model, pretrained=cfg.pretrained)
    data = build_data(cfg, model)
    zs = zero_shot_classifier(model, data.classnames, data.templates, inplace=True).eval()
    zs.requires_grad_(False)
    ft = cfg.finetune_config(SEED)
    first = None

    def maker(method: str) -> Maker:
        def make(kind: str, compiled: bool) -> Step:
            nonlocal first
            run = _BUILDERS[method](zs, data, ft)
            first = first if first is not None else run.batches(0)  # rendered once, the same for every step
            return engine_step(acc, run.objective, first, cfg.lr, cfg.weight_decay, kind, compiled, ft.grad_clip)
        return make

    return [Case("01", "full FT (CE; image tower + head)", batch, "one step", maker("full_ft")),
            Case("01", f"mask_fd (student {cfg.cam_method} CAMs)", batch, "one step", maker("mask_fd"))]


def study02(acc, batch: int, rank: int) -> list[Case]:
    from workbench.methods.baselines import lora_rank_for_budget
    from workbench.studies.cp_rank_ablation import Config
    from workbench.studies.cp_rank_ablation.cells import Batches, load_base, mode_approx_budget, task_world
    from workbench.studies.cp_rank_ablation.methods import METHODS
    from workbench.studies.kit import Cell

    cfg = Config(batch_size=batch)
    base = load_base(cfg)
    first = {k: v for k, v in Batches(task_world(cfg), base, cfg, SEED)(0).items() if k != "labels"}
    lora_r = lora_rank_for_budget(base, mode_approx_budget(base, rank, cfg)).rank

    def maker(method: str, setting: int) -> Maker:
        def make(kind: str, compiled: bool) -> Step:
            model = base.copy()
            setup = METHODS[method].setup(model, Cell(method, setting, SEED), cfg, ())
            return engine_step(acc, setup.objective, first, cfg.lr, cfg.weight_decay, kind, compiled)
        return make

    return [Case("02", f"contrastive, mode approx R={rank}", batch, "one step", maker("mode_approx", rank)),
            Case("02", f"contrastive, LoRA r={lora_r}", batch, "one step", maker("lora", lora_r))]


def study03(batch: int) -> list[Case]:
    from workbench.methods.codebook import UniCode
    from workbench.studies.codebook import Config
    from workbench.studies.codebook.methods import codebook_config

    cfg = Config(batch_size=batch)
    if cfg.video != "embedding":
        raise ValueError(f"video={cfg.video!r}: the benchmark builds the 'embedding' shapes only")
    embed = load_model(cfg.model, pretrained=cfg.pretrained).embed_dim
    shapes = {"video": (embed,), "audio": (cfg.bands,), "text": (embed,)}
    shapes = {m: shapes[m] for m in cfg.modalities}
    ccfg = codebook_config("unicode", cfg.codes, cfg)
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(batch, cfg.steps, *s, generator=g) for m, s in shapes.items()}

    def make(kind: str, compiled: bool) -> Step:
        model = UniCode(ccfg, shapes, seed=SEED).train()
        opt = adam(kind, model.main_parameters(), cls=torch.optim.Adam, lr=cfg.lr)  # as train_unicode
        fn = torch.compile(model.step) if compiled else model.step

        def step() -> torch.Tensor:
            losses = fn(feats)
            opt.zero_grad(set_to_none=True)
            losses.total.backward()
            opt.step()
            return losses.total.detach()

        return step

    return [Case("03", f"Uni-Code step ({len(shapes)} modalities, {cfg.codes} codes)", batch, "one step", make)]


def study04(batch: int) -> list[Case]:
    from workbench.studies.module_selection import Config, load_base
    from workbench.studies.module_selection.data import train_batch
    from workbench.studies.module_selection.train import (  # the study's training pieces (private ones too)
        _groups,
        _optimise,
        _warmup_cosine,
        build_modular,
        task_loss,
        task_path,
    )
    from workbench.world import World, WorldConfig

    cfg = Config(batch_size=batch)
    base = load_base(cfg).eval()
    world = World(WorldConfig(seed=cfg.world_seed))
    batches = [(t, train_batch(cfg, world, base, t, SEED, i)) for i, t in enumerate(cfg.tasks)]

    def make(kind: str, compiled: bool) -> Step:
        model, towers = build_modular(base, cfg, cfg.default_k, True, SEED)
        model.train()
        opt = adam(kind, _groups(model, towers, cfg))
        sched = _warmup_cosine(opt, cfg.steps)
        run = torch.compile(model.run) if compiled else model.run

        def step() -> torch.Tensor:
            total = 0.0
            for task, b in batches:
                total += _optimise(model, opt, sched, task_loss(task, run(task, b, path=task_path(task, True)), b))
            return torch.tensor(total)

        return step

    return [Case("04", f"modular model, k={cfg.default_k}, temporal", batch,
                 f"one round: {len(batches)} task batches, {len(batches)} AdamW steps", make)]


def sweep_cases(acc, batches: tuple[int, ...]) -> list[Case]:
    from workbench.methods.contrastive import ContrastiveObjective
    from workbench.world import World, WorldConfig

    world = World(WorldConfig(seed=0))
    cases = []
    for b in batches:
        def make(kind: str, compiled: bool, b=b) -> Step:
            model = load_model("tiny-world-clip")
            w = world.batch("novel_train", range(b))
            batch = {"images": model.resize(w.images), "tokens": model.tokenize(w.captions)}
            return engine_step(acc, ContrastiveObjective(model), batch, 1e-5, 0.1, kind, compiled)
        cases.append(Case("tiny", "tiny-world-clip contrastive (whole model)", b, "one step", make, ("plain",)))
    return cases


# ---------------------------------------------------------------------------- measuring
def count_flops(step: Step) -> int:
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def medians(fns: dict[str, Step], repeats: int) -> dict[str, float]:
    """Median seconds per call; every round runs every function once (a busy machine slows them alike)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


class CompileBudget:
    def __init__(self, seconds: float):
        self.seconds, self.spent = seconds, 0.0

    def why_not(self) -> str | None:
        if self.seconds <= 0:
            return "not tried: --compile-budget 0 (the --quick default)"
        if self.spent >= self.seconds:
            return f"not tried: the compile budget ({self.seconds:.0f} s, --compile-budget) was spent"
        return None


def _losses(make: Maker, variant: str) -> tuple[Step, list[float], float]:
    """A fresh step of `variant` from seed 0 and its first DET_STEPS losses (also its warm-up)."""
    kind, compiled = VARIANTS[variant]
    torch.manual_seed(SEED)
    t0 = time.perf_counter()
    step = make(kind, compiled)
    first = float(step())
    first_s = time.perf_counter() - t0
    return step, [first] + [float(step()) for _ in range(DET_STEPS - 1)], first_s


def measure(case: Case, repeats: int, peak: float, budget: CompileBudget) -> dict:
    steps: dict[str, Step] = {}
    runs: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    first_call: dict[str, float] = {}
    for v in case.variants:
        compiled = VARIANTS[v][1]
        why = budget.why_not() if compiled else None
        if why:
            notes[v] = why
            continue
        t0 = time.perf_counter()
        try:
            steps[v], runs[v], first_call[v] = _losses(case.make, v)
        except Exception as e:  # a variant that does not run here is a finding, not the end of the run
            if v == "plain":
                raise
            notes[v] = f"failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        finally:
            if compiled:
                budget.spent += time.perf_counter() - t0
    flops = count_flops(steps["plain"])  # eager; one more warm-up step for the plain variant
    try:
        sec = medians(steps, repeats)
    except Exception as e:
        bad = [v for v in steps if v != "plain"]
        notes.update({v: f"failed while timed: {type(e).__name__}: {str(e)[:200]}" for v in bad})
        sec = medians({"plain": steps["plain"]}, repeats)
    det: dict[str, Any] = {}
    if len(case.variants) > 1:  # determinism: every variant built again from the seed
        for v in list(sec):
            t0 = time.perf_counter()
            try:
                _, again, _ = _losses(case.make, v)
                det[v] = {"deterministic": again == runs[v], "losses": runs[v], "again": again,
                          "again_max_abs_diff": max(abs(a - b) for a, b in zip(runs[v], again)),
                          "loss3_minus_plain": runs[v][-1] - runs["plain"][-1]}
            except Exception as e:
                det[v] = {"deterministic": None, "why": f"{type(e).__name__}: {str(e)[:200]}"}
            finally:
                if VARIANTS[v][1]:
                    budget.spent += time.perf_counter() - t0
        if any(VARIANTS[v][1] for v in steps):
            torch._dynamo.reset()  # the next case's compiled steps start from a clean dynamo cache
    plain = sec["plain"]
    row = {"study": case.study, "step": case.name, "batch": case.batch, "unit": case.unit,
           "flops_per_step": flops, "seconds_per_step": plain, "gflops": flops / plain / 1e9,
           "fraction_of_peak": flops / plain / 1e9 / peak}
    if len(case.variants) > 1:
        row["variants"] = {v: {"seconds_per_step": sec.get(v), "ratio_over_plain": sec[v] / plain if v in sec else None,
                               "fraction_of_peak": flops / sec[v] / 1e9 / peak if v in sec else None,
                               "first_call_seconds": first_call.get(v), "note": notes.get(v),
                               **({"deterministic": det[v]["deterministic"],
                                   "losses": det[v].get("losses"), "losses_again": det[v].get("again"),
                                   "again_max_abs_diff": det[v].get("again_max_abs_diff"),
                                   "loss3_minus_plain": det[v].get("loss3_minus_plain")} if v in det else {})}
                           for v in case.variants}
    return row


# ---------------------------------------------------------------------------- report
def _ratio(row: dict, v: str) -> str:
    r = row["variants"][v]
    if r["ratio_over_plain"] is None:
        return f"{'-':>8}"
    return f"{r['ratio_over_plain']:>8.2f}"


def report(res: dict) -> str:
    pk = res["peak"]
    lines = [f"sgemm peak (float32 torch.mm, {pk['threads']} torch threads, median of {pk['repeats']}): "
             + "  ".join(f"{r['n']}: {r['gflops']:.0f}" for r in pk["sizes"])
             + f" GFLOP/s -> peak {pk['peak_gflops']:.0f} GFLOP/s (n={pk['peak_n']})",
             "training steps (FLOPs: matmul/conv/attention, fwd+bwd, FlopCounterMode; median s/step)",
             f"{'study':<5} {'step':<42} {'batch':>5} {'GFLOP/step':>10} {'ms/step':>8} {'GFLOP/s':>8} {'of peak':>7}"]
    for row in res["steps"] + res["sweep"]:
        issue = ISSUE_FRACTIONS.get(row["batch"]) if row["study"] == "tiny" else None
        lines.append(f"{row['study']:<5} {row['step'][:42]:<42} {row['batch']:>5} "
                     f"{row['flops_per_step'] / 1e9:>10.2f} {1e3 * row['seconds_per_step']:>8.1f} "
                     f"{row['gflops']:>8.1f} {100 * row['fraction_of_peak']:>6.1f}%"
                     + (f"  (issue: {100 * issue:.0f}%)" if issue else ""))
    lines += ["speedups: variant step time / plain step time (< 1 is faster), same run, interleaved; "
              "deterministic: built twice from seed 0, same losses over 3 steps (plain foreach fused compiled); "
              "compile s: the compiled variant's first call (build, compile, one step)",
              f"{'study':<5} {'step':<42} {'foreach':>8} {'fused':>8} {'compiled':>8}  {'deterministic':<24} "
              f"{'compile s':>9}"]
    notes = []
    for row in res["steps"]:
        var = row["variants"]
        det = " ".join({True: "T", False: "F", None: "?"}[var[v].get("deterministic")] if "deterministic" in var[v]
                       else "-" for v in VARIANTS)
        c = var["compiled"]["first_call_seconds"]
        lines.append(f"{row['study']:<5} {row['step'][:42]:<42} {_ratio(row, 'foreach')} {_ratio(row, 'fused')} "
                     f"{_ratio(row, 'compiled')}  {det:<24} "
                     + (f"{c:>9.1f}" if c is not None else f"{'-':>9}"))
        head = f"  {row['study']} {row['step']}"
        notes += [f"{head}: {v}: {var[v]['note']}" for v in VARIANTS if var[v]["note"]]
        notes += [f"{head}: {v}: the two runs' losses differ by up to {var[v]['again_max_abs_diff']:.2e}"
                  for v in VARIANTS if var[v].get("deterministic") is False]
        diff = [f"{v} {var[v]['loss3_minus_plain']:+.1e}" for v in VARIANTS
                if var[v].get("loss3_minus_plain") not in (None, 0.0)]
        if diff:
            notes.append(f"{head}: 3rd loss minus plain's: {', '.join(diff)}")
    if notes:
        lines += ["notes:"] + notes
    lines.append(f"runtime {res['runtime_seconds']:.0f} s ({res['compile_seconds']:.0f} s of it in torch.compile "
                 "first calls and rebuilds)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def _quick_batch(study_config, default: int | None, quick: bool) -> int:
    if default is not None:
        return default
    return study_config.preset(quick=True).batch_size if quick else study_config().batch_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the studies' quick batch sizes, 2 repeats, no compile, "
                   "sweep 16 and 64 (under a minute on 2 cores)")
    p.add_argument("--only", nargs="+", default=list(PARTS), help=f"parts, of {', '.join(PARTS)}")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per step (default 5; --quick 2)")
    p.add_argument("--peak-sizes", type=int, nargs="+", default=None, help="default 512 1024 1536 2048")
    p.add_argument("--peak-repeats", type=int, default=None, help="default 7; --quick 3")
    p.add_argument("--sweep-batches", type=int, nargs="+", default=None, help="default 16 64 256; --quick 16 64")
    p.add_argument("--batch", type=int, default=None, help="one batch size for every study step (default: each "
                   "study's Config; --quick: its quick preset's)")
    p.add_argument("--rank", type=int, default=8, help="study 02's mode-approx R (LoRA at the nearest count)")
    p.add_argument("--compile-budget", type=float, default=None, help="seconds of torch.compile (first calls and "
                   "rebuilds) after which no further step is compiled (default 100; --quick 0: none)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    bad = [x for x in args.only if x not in PARTS]
    if bad:
        p.error(f"unknown part(s) {', '.join(map(repr, bad))}; accepted: {', '.join(PARTS)}")
    q = args.quick
    repeats = args.repeats or (2 if q else 5)
    sizes = tuple(args.peak_sizes or ((512, 1024) if q else (512, 1024, 1536, 2048)))
    peak_repeats = args.peak_repeats or (3 if q else 7)
    sweep = tuple(args.sweep_batches or ((16, 64) if q else (16, 64, 256)))
    budget = CompileBudget(args.compile_budget if args.compile_budget is not None else (0.0 if q else 100.0))
    if min(repeats, peak_repeats, *sizes) < 1 or min(sweep) < 2 or (args.batch is not None and args.batch < 2):
        p.error("--repeats, --peak-repeats, --peak-sizes >= 1; --batch, --sweep-batches >= 2, please")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("recompile_limit", "cache_size_limit"):  # every rebuilt model is a new guard: room for them
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    t_start = time.perf_counter()
    peak = sgemm_peak(sizes, peak_repeats)
    print(f"peak {peak['peak_gflops']:.0f} GFLOP/s on {peak['threads']} threads", file=sys.stderr, flush=True)
    acc = Accelerator(cpu=True, mixed_precision="no")  # a CPU measurement, fp32 (the engine's CPU default)
    from workbench.studies import cam_counterfactual, codebook, cp_rank_ablation, module_selection

    builders = {"01": lambda: study01(acc, _quick_batch(cam_counterfactual.Config, args.batch, q)),
                "02": lambda: study02(acc, _quick_batch(cp_rank_ablation.Config, args.batch, q), args.rank),
                "03": lambda: study03(_quick_batch(codebook.Config, args.batch, q)),
                "04": lambda: study04(_quick_batch(module_selection.Config, args.batch, q)),
                "sweep": lambda: sweep_cases(acc, sweep)}
    steps, swept = [], []
    for part in PARTS:
        if part not in args.only:
            continue
        for case in builders[part]():
            t0 = time.perf_counter()
            row = measure(case, repeats, peak["peak_gflops"], budget)
            (swept if part == "sweep" else steps).append(row)
            print(f"{case.study} {case.name} (batch {case.batch}): {100 * row['fraction_of_peak']:.1f}% of peak "
                  f"[{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
    res = {"peak": peak, "steps": steps, "sweep": swept,
           "issue_reported_fractions": {str(k): v for k, v in ISSUE_FRACTIONS.items()},
           "settings": {"quick": q, "repeats": repeats, "determinism_steps": DET_STEPS, "seed": SEED,
                        "compile_budget_seconds": budget.seconds, "rank": args.rank, "only": args.only,
                        "precision": "float32", "variants": {k: {"optimizer": o, "compiled": c}
                                                             for k, (o, c) in VARIANTS.items()},
                        "flops": "torch.utils.flop_counter.FlopCounterMode over one whole step (matmul, conv, "
                                 "attention; forward and backward; element-wise, norms, optimiser not counted)"},
           "environment": environment(), "cpu_count": os.cpu_count(),
           "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "compile_seconds": budget.spent, "runtime_seconds": time.perf_counter() - t_start}
    print(report(res))
    print(f"-> {write_json_atomic(args.out, res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
