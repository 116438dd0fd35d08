"""Study 2: mode approximation (Aurora, NeurIPS 2023) at every rank, against the usual baselines.

    from workbench.studies import cp_rank_ablation as s
    result = s.run(s.Config.preset(quick=True))      # 2 ranks, 1 seed, few steps: seconds
    result = s.run(s.Config(ranks=(4, 32), seeds=(0, 1, 2), steps=60))

The task: adapt a pretrained dual encoder to the world's `novel_train` split (14 classes, 4 of
which -- pentagon, diamond, semicircle, chevron -- pretraining never showed) with the contrastive
loss on the world's captions, then measure on `novel_test`: image->text and text->image
recall@1/@5 (duplicated captions count as hits, see `workbench.eval.retrieval`) and zero-shot
classification accuracy (all 14 classes, and on the novel classes' images alone), and on
`heldout` (the 10 pretraining classes) what adapting cost there.

The study's own parts: `config` (the knobs), `methods` (the registry: mode approx and its
ablations, peft LoRA matched to each R's budget on the attention modules and on mode approximation's own
modules (`lora_same_sites`), LoHa, LoKr, VeRA, BitFit, full FT, linear
probe, zero-shot), `cells` (the grid and one cell's work), `findings` (the text) and `factors`
(what an adapter learned; real-scale arithmetic). Caching, progress, statistics and the result
file come from `workbench.studies.kit`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from workbench.eval.vocabulary import word_token_norms
from workbench.models import ClipBackend

from .. import kit
from . import findings as _findings
from .cells import (
    METRIC_NOTES,
    METRICS,
    Batches,
    EvalData,
    ValData,
    eval_data,
    evaluate,
    load_base,
    lora_matches,
    run_cell,
    task_world,
    val_data,
)
from .claims import CLAIMS
from .config import CACHE_SKIP, QUICK, Config
from .factors import FactorSnapshot, load_factors, mode_label, real_scale_rows
from .findings import Curve, fmt
from .methods import METHODS, MODE_APPROX_VARIANTS, Setup, mode_approx_config, mode_approx_sites

NAME = "cp_rank_ablation"
SITE_LORA = ("lora_same_sites", "lora_dropout")  # LoRA on mode approximation's modules, ranks matched to R
CACHE_VERSION = 3  # bump when a cell's meaning changes: old cells are then ignored

__all__ = ["NAME", "CLAIMS", "SITE_LORA",
           "CACHE_SKIP", "CACHE_VERSION", "METHODS", "METRICS", "METRIC_NOTES", "MODE_APPROX_VARIANTS", "STUDY",
           "Batches", "Config", "Curve", "EvalData", "FactorSnapshot", "Result", "Setup", "ValData", "comparison_rows",
           "curve_rows", "display_rows", "eval_data", "evaluate", "fmt", "format_table", "load_base", "load_factors",
           "lora_matches", "mode_approx_config", "mode_approx_sites", "mode_label", "plan_cells", "real_scale_rows",
           "run", "run_cell", "summarise", "task_world", "val_data", "word_token_norms"]


@dataclass(kw_only=True)
class Result(kit.Result):
    table: list[dict] = field(default_factory=list)  # one row per (method, rank): mean, std, CI over seeds
    zero_shot: dict[str, float] = field(default_factory=dict)
    real_scale: list[dict] = field(default_factory=list)
    comparisons: list[dict] = field(default_factory=list)  # every paired comparison the findings make
    curves: list[Curve] = field(default_factory=list)  # validation score vs steps, mean over seeds
    chosen_rank: int | None = None  # the mode-approx R with the best final validation score
    token_norms: list[dict] = field(default_factory=list)  # token-embedding row norms of the class names
    factors: FactorSnapshot | None = None
    trained: list[str] = field(default_factory=list)  # cell ids trained by this run
    cached: list[str] = field(default_factory=list)  # cell ids read from the cache

    @property
    def cells(self) -> list[dict]:
        return self.rows

    def of(self, method: str) -> list[dict]:
        """The table rows of `method` (one per rank)."""
        return [r for r in self.table if r["method"] == method]


class Streams:
    """Each seed's stream of training batches, made when a seed's first cell asks for it (claim seeds too)."""

    def __init__(self, world, base: ClipBackend, cfg: Config):
        self.world, self.base, self.cfg, self._streams = world, base, cfg, {}

    def get(self, seed: int | None) -> Batches | None:
        if seed is None:
            return None
        if seed not in self._streams:
            self._streams[seed] = Batches(self.world, self.base, self.cfg, seed)
        return self._streams[seed]


@dataclass
class Context:
    """What every cell shares: the base model, the evaluation and validation data, each seed's batches."""

    cfg: Config
    base: ClipBackend
    data: EvalData
    val: ValData
    streams: Streams
    weights: str
    cache: kit.CellCache | None = None

    @property
    def lora_ranks(self) -> tuple[int, ...]:
        """LoRA's ranks: the nearest parameter count to each mode-approx R's budget (deduplicated)."""
        return tuple(sorted({m.rank for m in lora_matches(self.cfg, self.base).values()}))

    @property
    def lora_sites_ranks(self) -> tuple[int, ...]:
        """The same for LoRA on mode approximation's modules (`lora_same_sites`, `lora_dropout`)."""
        return tuple(sorted({m.rank for m in lora_matches(self.cfg, self.base, sites=True).values()}))

    @property
    def keep_cell(self) -> kit.Cell:
        return kit.Cell("mode_approx", self.cfg.keep_rank, self.cfg.seeds[0])

    def bind(self, cache: kit.CellCache) -> None:
        self.cache = cache

    def keep(self, cell: kit.Cell) -> Path | None:
        return self.cache.artefact(cell, "adapter.pt") if cell == self.keep_cell else None

    def needs(self, cell: kit.Cell) -> list[Path]:
        path = self.keep(cell)
        return [path] if path is not None else []


def build_context(cfg: Config, use_cache: bool = True, progress: bool = True,
                  model: ClipBackend | None = None) -> Context:
    base = model if model is not None else load_base(cfg)
    world = task_world(cfg)
    return Context(cfg, base, eval_data(cfg, world), val_data(cfg, world),
                   Streams(world, base, cfg), kit.weights_fingerprint(base))


def report(ctx: Context, rows: list[dict], verdicts: list[kit.Verdict]) -> kit.Report:
    cfg, base = ctx.cfg, ctx.base
    table = summarise(rows, cfg, base)
    zs = next((r for r in table if r["method"] == "zero_shot"), None)
    ids = {kit.Cell(r["method"], r["setting"], r["seed"]).id: r["cached"] for r in rows}
    keep = ctx.keep_cell
    factors = load_factors(ctx.cache.artefact(keep, "adapter.pt"), keep, base) if keep.id in ids else None
    text, comparisons, headline = _findings.write(table, rows, cfg, verdicts)
    zero_shot = {m: zs[m] for m in METRICS} if zs else {}
    curves = _findings.curves([r for r in rows if r["seed"] in (None, *cfg.seeds)])  # like for like: base seeds
    extra = {"table": table, "zero_shot": zero_shot, "real_scale": real_scale_rows(cfg), "comparisons": comparisons,
             "factors": factors, "curves": curves, "chosen_rank": _findings.chosen_rank(rows, cfg.seeds),
             "token_norms": word_token_norms(base), "trained": [i for i, c in ids.items() if not c],
             "cached": [i for i, c in ids.items() if c]}
    return kit.Report(
        tables={"methods": table, "comparisons": comparisons, "curves": curve_rows(curves),
                "token_norms": extra["token_norms"], "real_scale": extra["real_scale"]},
        findings=text, headline=headline, main_table="methods", percent=METRICS,
        metrics={"zero_shot": zero_shot, "chosen_rank": extra["chosen_rank"], "metric_notes": METRIC_NOTES},
        extra=extra)


STUDY = kit.Study(name=NAME, config=Config, methods=METHODS, context=build_context, report=report,
                  cache_skip=CACHE_SKIP, version=CACHE_VERSION, quick=QUICK, claims=CLAIMS, result=Result,
                  title="cp-rank ablation")


def plan_cells(cfg: Config, model: ClipBackend) -> list[kit.Cell]:
    """Every (method, rank, seed) the config asks for; LoRA ranks matched to R are deduplicated."""
    cfg = STUDY.resolve(cfg)
    return STUDY.plan(cfg, Context(cfg, model, None, None, Streams(None, model, cfg), ""))


def run(cfg: Config | None = None, output_dir: str | Path | None = None, model: ClipBackend | None = None,
        progress: bool = True, use_cache: bool = True) -> Result:
    """Run (or resume) the sweep, judge the claims, summarise it, write result.json; returns the Result."""
    return STUDY.run(cfg, output_dir, progress=progress, use_cache=use_cache, model=model)


def summarise(rows: list[dict], cfg: Config, model: ClipBackend) -> list[dict]:
    """One row per (method, rank): mean, std and 95% interval over seeds of every metric, trainable count."""
    ran = {r["method"] for r in rows}
    matches = lora_matches(cfg, model) if {"lora", "mode_approx"} & ran else {}
    site_matches = lora_matches(cfg, model, sites=True) if set(SITE_LORA) & ran else {}
    first = {}
    for r in rows:
        first.setdefault((r["method"], r["setting"]), r)
    table = []
    for row in kit.summarise(rows, (*METRICS, "train_seconds")):
        method, rank = row.pop("method"), row.pop("setting")
        r0 = first[(method, rank)]
        trained = METHODS[method].seeded
        row = {"method": method, "label": METHODS[method].label, "rank": rank, "trainable": r0["trainable"],
               "trainable_pct": round(100 * r0["trainable"] / r0["total"], 4),
               "steps": cfg.steps if trained else 0, "batch_size": cfg.batch_size if trained else 0, **row}
        if method == "lora":
            row["matches_R"] = [R for R, mt in matches.items() if mt.rank == rank]
        if method in SITE_LORA:
            row["matches_R"] = [R for R, mt in site_matches.items() if mt.rank == rank]
        if method == "mode_approx" and rank in matches:
            row["lora_rank"], row["lora_params"] = matches[rank].rank, matches[rank].params
        if method == "mode_approx" and rank in site_matches:
            row["lora_sites_rank"], row["lora_sites_params"] = site_matches[rank].rank, site_matches[rank].params
        table.append(row)
    return table


def curve_rows(curves: Sequence[Curve]) -> list[dict]:
    """The validation curves as flat rows (method, rank, step, score), for result.json."""
    return [{"method": c.method, "rank": c.rank, "step": s, "score": round(v, 4), "seeds": c.seeds}
            for c in curves for s, v in zip(c.steps, c.score)]


def display_rows(rows: Sequence[dict], metrics: Sequence[str] | None = None) -> list[dict]:
    """The methods table with "mean ± std" strings, for a Markdown table (default: every metric some
    method measured)."""
    if metrics is None:
        metrics = [m for m in METRICS if any(r.get(m) is not None for r in rows)]
    out = []
    for r in rows:
        extra = f" (matches R={r['matches_R']})" if r.get("matches_R") else ""
        budget = f"{r['steps']} x {r['batch_size']}" if r.get("steps") else "-"
        out.append({"method": r["label"] + extra, "rank": r["rank"], "trainable": f"{r['trainable']:,}",
                    "trainable %": f"{r['trainable_pct']:.4f}", "steps x batch": budget,
                    **{m: fmt(r, m) for m in metrics}})
    return out


def comparison_rows(comparisons: Sequence[dict]) -> list[dict]:
    """The paired comparisons in points, for a Markdown table."""
    pts = lambda v: "n/a" if v is None else f"{100 * v:+.1f}"
    return [{"a": c["a"], "b": c["b"], "metric": c["metric"], "a - b (points)": pts(c["diff"]),
             "95% CI": "n/a" if c["lo"] is None else f"{pts(c['lo'])} to {pts(c['hi'])}", "seeds": c["seeds"],
             "verdict": c["verdict"],
             "detectable": "" if c["verdict"] == "beyond noise" or c["detectable"] is None
             else f"{100 * c['detectable']:.1f}"} for c in comparisons]


def format_table(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """The methods table as fixed-width text (mean ± std over seeds)."""
    head = f"{'method':40} {'rank':>4} {'params':>10} " + " ".join(f"{m:>14}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{fmt(r, m):>14}" for m in metrics)
        rank = "-" if r["rank"] is None else r["rank"]
        lines.append(f"{r['label'][:40]:40} {rank:>4} {r['trainable']:>10,} {cells}")
    return "\n".join(lines)
