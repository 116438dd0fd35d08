"""Study 4: a modular multimodal model (mPLUG-2, ICML 2023), module selection per task, and the modality gap.

    from workbench.studies import module_selection as s
    result = s.run(s.Config.preset(quick=True))          # k in {0, all}, 2 seeds, a few steps
    result.table("k_sweep"), result.table("paths"), result.findings

The modular model (`workbench.methods.modular`) is built from tiny-world-clip's towers and trained
on the world's five tasks, one per step (image and video retrieval, captioning, QA, classification,
`workbench.data.modular_tasks`) at each number k of shared (universal) text layers. Measured at
each k: every task's score, the modality gap (`workbench.eval.modality_gap`, with per-pair jackknife
values for item-level intervals), retrieval R@1 and the learned logit scale, beside a capacity-matched
control (the universal layers as unshared copies of the text blocks);
with the temporal modules on and off: direction of motion (and what a frame-mean encoder can
see); at the paper's k = 2: every task along every valid path with its FLOPs and time; and "Mind
the Gap": a temperature sweep of the dual encoder and the embedding-shift curve of both models at their
own learned temperatures (CLIP's 0.01 as a second, labelled curve).

The study's parts: `config` (the knobs), `methods` (the registry), `data` (test sets, training
stream), `train`, `measure`, `cells` (the grid and one cell's work), `findings`. Caching,
progress, statistics and the result file come from `workbench.studies.kit`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.eval.vocabulary import word_token_norms
from workbench.models import ClipBackend, load_model
from workbench.world import COLOR_NAMES, DIRECTIONS, PRETRAIN_CLASSES, World, WorldConfig

from .. import kit
from . import findings as _findings
from .cells import KEPT, Context, context
from .claims import CLAIMS
from .config import CACHE_SKIP, QUICK, TASKS, Config
from .data import EvalData, eval_data, val_data
from .findings import fmt
from .measure import GAP_FIELDS, SCORE
from .methods import METHODS, DualEncoder
from .tables import TEMPORAL_COLUMNS, k_table, kept_by_name, path_rows, temperature_rows, temporal_table
from .validation import validation_scores

NAME = "module_selection"
CACHE_VERSION = 2  # bump when a cell's meaning changes: old cells are then ignored
GAP = tuple(f"{m}_{f}" for m in ("image", "video") for f in GAP_FIELDS)
K_METRICS = (*GAP, "image_r1", "video_r1", "slot_mean", "caption_slots", "cider", "bleu4", "slot_object", "slot_colour",
             "slot_context", "slot_direction", "qa_acc", "qa_acc_colour", "qa_acc_shape", "qa_acc_direction",
             "cls_acc", "dir_acc", "sign_acc", "logit_scale", "train_seconds")
TEMPERATURE_METRICS = ("image_l2m", "image_l2i", "image_rmg", "image_paired_cos", "image_r1", "train_seconds")
# row entries that go to their own tables, not into result.json's rows
SIDE = ("paths", "shift", "shift_clip", "losses", KEPT)

__all__ = ["NAME", "CLAIMS",
           "CACHE_SKIP", "CACHE_VERSION", "GAP", "K_METRICS", "METHODS", "QUICK", "SCORE", "STUDY", "TASKS",
           "Config", "Context", "DualEncoder", "EvalData", "Result", "context", "eval_data", "fmt", "k_table",
           "kept_by_name", "path_rows", "plan_cells", "run", "temperature_rows", "temporal_table", "val_data",
           "validation_scores"]


@dataclass(kw_only=True)
class Result(kit.Result):
    comparisons: list[dict] = field(default_factory=list)
    kept: dict[tuple[str, Any], dict] = field(default_factory=dict)  # (method, setting) -> first seed's outputs
    shift: dict[str, list[dict]] = field(default_factory=dict)  # model -> embedding-shift curve
    losses: dict[tuple[str, Any], list[list[float]]] = field(default_factory=dict)  # training curves per seed
    data: EvalData | None = None  # the test sets (the explorer shows their first items)
    default_k: Any = 2

    def table(self, name: str) -> list[dict]:
        return self.tables[name]

    def of(self, name: str, method: str, setting: Any = None) -> dict | None:
        return next((r for r in self.tables[name] if r.get("method") == method
                     and (setting is None or r.get("setting") == setting)), None)


def load_base(cfg: Config) -> ClipBackend:
    import torch

    torch.manual_seed(cfg.model_seed)
    return load_model(cfg.model, cfg.pretrained, device=kit.device(cfg.device))


def build_context(cfg: Config, use_cache: bool = True, progress: bool = True,
                  model: ClipBackend | None = None) -> Context:
    base = model if model is not None else load_base(cfg)
    base.eval()
    world = World(WorldConfig(seed=cfg.world_seed))
    return context(cfg, base, world, eval_data(cfg, world, base))


def report(ctx: Context, rows: list[dict], verdicts: list[kit.Verdict]) -> kit.Report:
    cfg = ctx.cfg
    rows = [dict(r) for r in rows]
    side = [{k: r.pop(k) for k in SIDE if k in r} for r in rows]
    tables = summarise(rows, side, cfg)
    shift = shift_curves(rows, side, cfg)
    tables["direction_words"] = direction_words(ctx.base)
    text, comparisons = _findings.write(rows, tables, shift, cfg, verdicts)
    tables["comparisons"] = comparisons
    tables["shift"] = [{"model": m, **p} for m, curve in shift.items() for p in curve]
    kept: dict = {}
    losses: dict = {}
    for r, s in zip(rows, side):
        key = (r["method"], r["setting"])
        if KEPT in s:
            kept[key] = s[KEPT]
        if "losses" in s:
            losses.setdefault(key, []).append(s["losses"])
    return kit.Report(
        tables=tables, findings=text, headline=_findings.headline(rows, cfg, verdicts), main_table="k_sweep",
        percent=("image_r1", "video_r1", "caption_slots", "qa_acc", "cls_acc", "dir_acc"),
        metrics={"scores": SCORE}, rows=rows,
        extra={"comparisons": comparisons, "shift": shift, "data": ctx.data, "default_k": cfg.default_k,
               "kept": kept, "losses": losses})


STUDY = kit.Study(name=NAME, config=Config, methods=METHODS, context=build_context, report=report,
                  cache_skip=CACHE_SKIP, version=CACHE_VERSION, quick=QUICK, claims=CLAIMS, result=Result,
                  title="module selection")


def plan_cells(cfg: Config) -> list[kit.Cell]:
    """The grid: every registered method the config asks for, over its sweep."""
    return STUDY.plan(STUDY.resolve(cfg))


def run(cfg: Config | None = None, output_dir: str | Path | None = None, model: ClipBackend | None = None,
        progress: bool = True, use_cache: bool = True) -> Result:
    """Run (or resume) the study, judge the claims, summarise it, write result.json; returns the Result."""
    return STUDY.run(cfg, output_dir, progress=progress, use_cache=use_cache, model=model)


def direction_words(base: ClipBackend) -> list[dict]:
    """Token-embedding row norms of the direction words beside the pretraining classes and colours."""
    return word_token_norms(base, [*DIRECTIONS, *PRETRAIN_CLASSES, *COLOR_NAMES])


def summarise(rows: list[dict], side: list[dict], cfg: Config) -> dict[str, list[dict]]:
    """The notebook's tables: k sweep, temporal on/off, module selection (paths), temperature sweep."""
    pick = lambda *methods: [r for r in rows if r["method"] in methods]
    temporal = [r for r in rows if r["method"] in ("dual_encoder", "no_temporal", "direction", "direction_off")
                or (r["method"] == "modular" and r["setting"] == cfg.default_k)]
    label = lambda t: [{"label": METHODS[r["method"]].label, **r} for r in t]
    return {"k_sweep": label(kit.summarise(pick("modular", "modular_unshared"), K_METRICS)),
            "temporal": label(kit.summarise(temporal, TEMPORAL_COLUMNS)),
            "paths": path_summary([s["paths"] for s in side if "paths" in s]),
            "temperature": label(kit.summarise(pick("temperature"), TEMPERATURE_METRICS))}


def path_summary(per_seed: list[list[dict]]) -> list[dict]:
    """Mean (and std over seeds) of each (task, path)'s score, FLOPs per item and time per item."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for table in per_seed:
        for r in table:
            groups.setdefault((r["task"], r["path"]), []).append(r)
    out = []
    for (task, path), rs in groups.items():
        scores = [r["score"] for r in rs]
        out.append({"task": task, "path": path, "default": rs[0]["default"], "score_name": rs[0]["score_name"],
                    "score": statistics.fmean(scores), "score_std": statistics.stdev(scores) if len(rs) > 1 else 0.0,
                    "seeds": len(rs), "flops": statistics.fmean(r["flops"] for r in rs),
                    "ms_per_item": statistics.fmean(r["ms_per_item"] for r in rs)})
    return out


def shift_curves(rows: list[dict], side: list[dict], cfg: Config) -> dict[str, list[dict]]:
    """model -> the embedding-shift curve (the modular model's averaged over its seeds): at the model's own
    learned temperature under the model's name, at CLIP's τ (cfg.shift_temperature) as "<name> at CLIP's τ=..."."""
    curves: dict[str, list[list[dict]]] = {}
    for r, s in zip(rows, side):
        name = "tiny-world-clip" if r["method"] == "dual_encoder" else f"modular k={r['setting']}"
        if "shift" in s:
            curves.setdefault(name, []).append(s["shift"])
        if "shift_clip" in s:
            curves.setdefault(f"{name} at CLIP's τ={cfg.shift_temperature:g}", []).append(s["shift_clip"])
    out = {}
    for name, cs in curves.items():
        out[name] = [{"lam": pts[0]["lam"],
                      **{m: _mean([p.get(m) for p in pts]) for m in ("gap", "loss", "accuracy", "temperature")}}
                     for pts in zip(*cs)]
    return out


def _mean(values: list) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.fmean(v) if v else None
