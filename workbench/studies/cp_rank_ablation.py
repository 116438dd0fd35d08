"""Study 2: mode approximation (Aurora, NeurIPS 2023) at every rank, against the usual baselines.

    from workbench.studies import cp_rank_ablation as s
    result = s.run(s.Config.preset(quick=True))      # minutes -> seconds: 2 ranks, 1 seed, few steps
    result = s.run(s.Config(ranks=(4, 32), seeds=(0, 1, 2), steps=60))

The task: adapt a pretrained dual encoder to the world's `novel_train` split (14 classes, 4 of
which -- pentagon, diamond, semicircle, chevron -- pretraining never showed) with the contrastive
loss on the world's captions, then measure on `novel_test`: image->text and text->image
recall@1/@5 (duplicated captions count as hits, see `workbench.eval.retrieval`) and zero-shot
classification accuracy (all 14 classes, and on the novel classes' images alone), and on
`heldout` (the 10 pretraining classes) what adapting cost there.

Methods (every one trains through `workbench.engine.train` on the same batches):

* `mode_approx`: shared factors, the authors' Tucker-core form, swept over `ranks`;
* `mode_approx_cp` / `_noshare` / `_gated` / `_context`: the paper's ablations (pure CP core,
  parameter sharing off, gated query transformation, informative context enhancement) at
  `ablation_ranks`;
* `lora`: peft LoRA on every attention module with its rank matched to the mode-approx adapter's
  parameter count at each R (LoRA cannot go below rank 1: at small R it holds more parameters,
  which the table shows), rank-stabilised scaling by default (`lora_rslora`);
* `loha`, `lokr`, `vera` (peft, on nn.Linear layers: open_clip's MLP, HF CLIP's projections and
  MLP), `bitfit`, `full_ft`, and `linear_probe`
  (a zero-shot-initialised head on frozen image features: classification only; its retrieval
  would be the zero-shot model's), and `zero_shot` (no training).

Every finished cell (method, rank, seed) is written to a cache folder keyed by a hash of the
settings that decide it and of the model's weights, and skipped when the study runs again.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from workbench.engine import TrainConfig, save_atomic, train
from workbench.eval.retrieval import classify_features, encode_images, encode_pairs, retrieval_from_features
from workbench.methods import baselines as bl
from workbench.methods.contrastive import ContrastiveObjective
from workbench.models import TINY_NAME, ClipBackend, load_model
from workbench.world import World, WorldConfig

from .common import cache_dir, config_hash, write_json_atomic, write_result
from .common import output_dir as _output_dir

STUDY = "cp_rank_ablation"
CACHE_VERSION = 1  # bump when a cell's meaning changes: old cells are then ignored
METRICS = ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "acc_test", "acc_novel", "acc_heldout")
METRIC_NOTES = {
    "i2t_r1": "image->text recall@1 (test split)", "i2t_r5": "image->text recall@5",
    "t2i_r1": "text->image recall@1", "t2i_r5": "text->image recall@5",
    "acc_test": "zero-shot-head accuracy over all test classes",
    "acc_novel": "the same, on images of the classes pretraining never saw",
    "acc_heldout": "accuracy on heldout (pretraining classes): what adapting costs there",
}


class MethodSpec(NamedTuple):
    label: str
    sweep: str  # "rank": over cfg.ranks; "ablation": over cfg.ablation_ranks; "matched": LoRA
    #            at the mode-approx budget of each R; "fixed": its own rank or none; "none": no training
    lr: str  # which Config field holds its learning rate


METHODS: dict[str, MethodSpec] = {
    "zero_shot": MethodSpec("zero-shot", "none", "lr"),
    "mode_approx": MethodSpec("mode approx (Tucker core, shared)", "rank", "lr"),
    "mode_approx_cp": MethodSpec("mode approx, CP (diagonal core)", "ablation", "lr"),
    "mode_approx_noshare": MethodSpec("mode approx, sharing off", "ablation", "lr"),
    "mode_approx_gated": MethodSpec("mode approx + gated query transf.", "ablation", "lr"),
    "mode_approx_context": MethodSpec("mode approx + context enhancement", "ablation", "lr"),
    "lora": MethodSpec("LoRA (peft, attention, matched params)", "matched", "lr"),
    "loha": MethodSpec("LoHa (peft, linear layers)", "fixed", "lr"),
    "lokr": MethodSpec("LoKr (peft, linear layers)", "fixed", "lr"),
    "vera": MethodSpec("VeRA (peft, linear layers)", "fixed", "lr"),
    "bitfit": MethodSpec("BitFit (biases)", "fixed", "lr"),
    "linear_probe": MethodSpec("linear probe (classification only)", "fixed", "probe_lr"),
    "full_ft": MethodSpec("full fine-tuning", "fixed", "full_ft_lr"),
}
MODE_APPROX_VARIANTS = {  # method -> ModeApproxConfig fields it changes
    "mode_approx": {}, "mode_approx_cp": {"form": "cp"}, "mode_approx_noshare": {"share": False},
    "mode_approx_gated": {"gated": True}, "mode_approx_context": {"context": True},
}


@dataclass(frozen=True)
class Config:
    """The sweep: which model, which methods at which ranks and seeds, how long to train, how to measure."""

    model: str = TINY_NAME
    pretrained: str | None = None  # weights folder/file/tag; None = the shipped weights (tiny)
    world_seed: int = 0
    ranks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)  # mode-approx R (and LoRA matched to each)
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = tuple(METHODS)
    ablation_ranks: tuple[int, ...] = (8,)  # R of the CP / sharing-off / gated / context cells
    # Optimisation: chosen on a validation slice of novel_train (indices >= 1e6, never novel_test)
    # with the shipped tiny-world-clip and mode approx only, at R = 8 and 64, 2 seeds: novel-class
    # accuracy at R = 64 was 0.13/0.17 (lr 1e-2, 40 steps), 0.17/0.19 (3e-3, 40), 0.19/0.15 (1e-3,
    # 40) and 0.29/0.28 (3e-3, 80 steps); at R = 8 all of them stayed at 0.01-0.18. One lr for every
    # adapter method, so none is tuned against another.
    steps: int = 80
    batch_size: int = 32
    lr: float = 3e-3  # mode approx, LoRA, LoHa, LoKr, VeRA, BitFit
    full_ft_lr: float = 2e-4
    probe_lr: float = 1e-2
    weight_decay: float = 0.05  # the paper's AdamW weight decay
    warmup: float = 0.1
    dropout: float = 0.1  # mode-approx dropout (the authors' 0.1)
    # LoRA scaled by alpha/sqrt(r), alpha 1 (rank-stabilised LoRA): with alpha/r, alpha = r, the update
    # grows with r and LoRA at r = 53 diverged at the shared lr on the validation slice
    lora_rslora: bool = True
    loha_rank: int = 2
    lokr_rank: int = 4
    vera_rank: int = 32
    train_split: str = "novel_train"
    test_split: str = "novel_test"
    heldout_split: str = "heldout"
    n_eval: int = 250  # test pairs (retrieval set, classification images)
    n_heldout: int = 200
    keep_rank: int = 8  # the mode-approx cell (R, first seed) whose adapter is kept for the factor figure
    real_scale: str = "counted"  # "counted" (build ViT-B-32 and a BLIP-base-sized model), "formula", "off"
    model_seed: int = 0  # seeds random initialisation when the model has no weights

    def __post_init__(self):
        for name in ("ranks", "seeds", "methods", "ablation_ranks"):
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                raise ValueError(f"{name}={value!r} must be a tuple, e.g. {name}=({value!r},)")
            object.__setattr__(self, name, tuple(value))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods={self.methods!r}: unknown {unknown}; accepted: {', '.join(METHODS)}")
        for name in ("ranks", "ablation_ranks"):
            bad = [r for r in getattr(self, name) if not isinstance(r, int) or r < 1]
            if bad:
                raise ValueError(f"{name}={getattr(self, name)!r}: ranks are positive integers, got {bad}")
        if not self.seeds:
            raise ValueError("seeds=() : give at least one seed")
        for name in ("steps", "batch_size", "n_eval", "n_heldout", "loha_rank", "lokr_rank", "vera_rank"):
            if getattr(self, name) < (0 if name == "steps" else 1):
                raise ValueError(f"{name}={getattr(self, name)!r} must be positive")
        if self.real_scale not in ("counted", "formula", "off"):
            raise ValueError(f"real_scale={self.real_scale!r}; accepted: 'counted', 'formula', 'off'")

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> "Config":
        """The config with `overrides` (None values keep the default, as a notebook's parameters
        cell passes them); `quick` shrinks it to a smoke run (2 ranks, 1 seed, 4 steps)."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if quick:
            small = dict(ranks=(2, 8), seeds=(0,), ablation_ranks=(8,), steps=4, batch_size=16, n_eval=48,
                         n_heldout=40, real_scale="formula")
            overrides = {**small, **overrides}
        return cls(**overrides)

    def cell_key(self) -> dict:
        """The settings a cell's numbers depend on (not which ranks, seeds or methods are swept)."""
        skip = {"ranks", "seeds", "methods", "ablation_ranks", "keep_rank", "real_scale"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


class Cell(NamedTuple):
    method: str
    rank: int | None  # mode-approx R, LoRA r, LoHa/LoKr/VeRA r; None for rank-free methods
    seed: int

    @property
    def id(self) -> str:
        return f"{self.method}" + (f"-r{self.rank}" if self.rank is not None else "") + f"-s{self.seed}"


@dataclass
class FactorSnapshot:
    """The learned shared factors of one trained adapter, for pictures."""

    rank: int
    form: str
    seed: int
    U: torch.Tensor  # (R, d): d -> R
    V: torch.Tensor  # (d, R): R -> d
    core: torch.Tensor | None  # (R, R, R) (Tucker form) or None (CP)
    modes: dict[str, torch.Tensor]  # adapted matrix (block) label -> lambda (R,), trained
    modes_init: dict[str, torch.Tensor] | None = None  # the same at initialisation


@dataclass
class Result:
    config: Config
    cells: list[dict]  # one row per (method, rank, seed)
    table: list[dict]  # one row per (method, rank): mean and std over seeds
    zero_shot: dict[str, float]
    real_scale: list[dict]
    factors: FactorSnapshot | None
    findings: str
    output_dir: Path
    seconds: float
    trained: list[str] = field(default_factory=list)  # cell ids trained by this run
    cached: list[str] = field(default_factory=list)  # cell ids read from the cache

    def rows(self, method: str) -> list[dict]:
        return [r for r in self.table if r["method"] == method]

    def write(self) -> Path:
        """(Re)write result.json; call again after saving figures so it lists them."""
        metrics = {"zero_shot": self.zero_shot, "cells_trained": len(self.trained),
                   "cells_cached": len(self.cached), "metric_notes": METRIC_NOTES}
        tables = {"methods": self.table, "cells": self.cells, "real_scale": self.real_scale}
        return write_result(self.output_dir, STUDY, self.config, metrics, tables, self.findings, self.seconds)


# ---------------------------------------------------------------------------- data
@dataclass
class EvalData:
    """The fixed evaluation sets: test pairs (retrieval + classification) and heldout images."""

    images: torch.Tensor  # (N, 3, S, S)
    captions: list[str]
    labels: torch.Tensor  # (N,) indices into World.classes
    classes: tuple[str, ...]  # the test split's class names
    heldout_images: torch.Tensor  # (M, 3, S, S)
    heldout_labels: torch.Tensor  # (M,)
    heldout_classes: tuple[str, ...]


def eval_data(cfg: Config, world: World) -> EvalData:
    t = world.batch(cfg.test_split, range(cfg.n_eval))
    h = world.batch(cfg.heldout_split, range(cfg.n_heldout))
    return EvalData(t.images, t.captions, t.labels, world.split_classes(cfg.test_split), h.images, h.labels,
                    world.split_classes(cfg.heldout_split))


class Batches:
    """`batches(step)` for the engine: a seed's own stream of training batches, rendered once."""

    def __init__(self, world: World, model: ClipBackend, cfg: Config, seed: int):
        self.world, self.model, self.cfg, self.seed = world, model, cfg, seed
        self._memo: dict[int, dict[str, torch.Tensor]] = {}

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        if step not in self._memo:
            B = self.cfg.batch_size
            start = (self.seed * self.cfg.steps + step) * B  # seeds see different samples
            b = self.world.batch(self.cfg.train_split, range(start, start + B))
            self._memo[step] = {"images": b.images, "tokens": self.model.tokenize(b.captions), "labels": b.labels}
        batch = self._memo[step]  # world-sized images kept: a 224 px model's copies would take gigabytes
        return {**batch, "images": self.model.resize(batch["images"])}


def _without_labels(batches: Callable[[int], dict]) -> Callable[[int], dict]:
    return lambda step: {k: v for k, v in batches(step).items() if k != "labels"}


# ---------------------------------------------------------------------------- the cells
def mode_approx_config(method: str, rank: int, seed: int, cfg: Config):
    """The ModeApproxConfig of a mode-approx method (the variants change one field each)."""
    from workbench.methods.mode_approx import ModeApproxConfig

    return ModeApproxConfig(rank=rank, dropout=cfg.dropout, seed=seed, **MODE_APPROX_VARIANTS[method])


def mode_approx_budget(model: ClipBackend, rank: int, cfg: Config) -> int:
    """Trainable parameters of the default mode-approx adapter at rank R on `model` (the formula)."""
    from workbench.methods.mode_approx import formula_param_count

    return formula_param_count(mode_approx_config("mode_approx", rank, 0, cfg), model)


def lora_matches(cfg: Config, model: ClipBackend) -> dict[int, bl.RankMatch]:
    """Mode-approx R -> the LoRA rank with the nearest parameter count."""
    return {R: bl.lora_rank_for_budget(model, mode_approx_budget(model, R, cfg)) for R in cfg.ranks}


def plan_cells(cfg: Config, model: ClipBackend) -> list[Cell]:
    """Every (method, rank, seed) the config asks for; LoRA ranks matched to R are deduplicated."""
    fixed = {"loha": cfg.loha_rank, "lokr": cfg.lokr_rank, "vera": cfg.vera_rank}
    cells: list[Cell] = []
    for method in cfg.methods:
        sweep = METHODS[method].sweep
        if sweep == "none":
            cells.append(Cell(method, None, cfg.seeds[0]))  # deterministic: one cell
            continue
        if sweep == "rank":
            ranks = list(cfg.ranks)
        elif sweep == "ablation":
            ranks = list(cfg.ablation_ranks)
        elif sweep == "matched":
            ranks = sorted({m.rank for m in lora_matches(cfg, model).values()})
        else:
            ranks = [fixed.get(method)]
        cells += [Cell(method, r, s) for r in ranks for s in cfg.seeds]
    return cells


class Setup(NamedTuple):
    objective: nn.Module  # what the engine trains: forward(**batch) -> Loss
    trainable: int
    total: int
    probe: nn.Module | None  # the linear probe (classification through its own head)


def setup_cell(cell: Cell, model: ClipBackend, cfg: Config, classes: Sequence[str]) -> Setup:
    """Apply the cell's method to `model` (in place) and build its objective."""
    torch.manual_seed(cell.seed)  # adapter initialisation (peft draws from the global generator)
    if cell.method == "zero_shot":
        return Setup(nn.Identity(), 0, bl.count_all(model), None)
    if cell.method in MODE_APPROX_VARIANTS:
        from workbench.methods.mode_approx import inject_mode_approx, objective_for

        macfg = mode_approx_config(cell.method, cell.rank, cell.seed, cfg)
        rep = inject_mode_approx(model, macfg)
        return Setup(objective_for(model, macfg), rep.trainable_params, rep.total_params, None)
    if cell.method == "linear_probe":
        rep = bl.apply_linear_probe(model, classes)
        return Setup(bl.LinearProbeObjective(rep.module), rep.trainable, rep.total, rep.module)
    if cell.method == "vera":  # the seed also draws VeRA's frozen random projections
        rep = bl.apply_vera(model, r=cell.rank, projection_seed=cell.seed)
    elif cell.method == "lora":
        rep = bl.apply_lora(model, r=cell.rank, rslora=cfg.lora_rslora)
    elif cell.method in ("loha", "lokr"):
        rep = bl.APPLY[cell.method](model, r=cell.rank)
    else:
        rep = bl.APPLY[cell.method](model)
    return Setup(ContrastiveObjective(model), rep.trainable, rep.total, None)


def train_cell(cell: Cell, setup: Setup, batches: Batches, cfg: Config, classes: Sequence[str]):
    """Train the cell's objective on its seed's batches; returns the engine's TrainResult."""
    if setup.probe is not None:  # the probe learns labels, mapped to its own class order
        index = {World.classes.index(c): i for i, c in enumerate(classes)}

        def feed(step: int) -> dict:
            b = batches(step)
            return {"images": b["images"], "labels": torch.tensor([index[int(y)] for y in b["labels"]])}
    else:
        feed = _without_labels(batches)
    tcfg = TrainConfig(steps=cfg.steps, lr=getattr(cfg, METHODS[cell.method].lr), weight_decay=cfg.weight_decay,
                       warmup=cfg.warmup, grad_clip=1.0, seed=cell.seed, log_every=max(1, cfg.steps // 5))
    return train(setup.objective, feed, tcfg, progress=False, desc=cell.id)


@torch.no_grad()
def evaluate(model: ClipBackend, data: EvalData, probe: nn.Module | None = None) -> dict[str, float | None]:
    """Retrieval and classification numbers of a (tuned) model; a probe classifies with its own head."""
    img, txt = encode_pairs(model, data.images, data.captions)  # (N, D) each
    out: dict[str, float | None] = dict.fromkeys(METRICS[:4])
    if probe is None:  # the probe leaves both towers untouched: its retrieval is the zero-shot one
        r = retrieval_from_features(img, txt, data.captions)
        out.update(i2t_r1=r.i2t_r1, i2t_r5=r.i2t_r5, t2i_r1=r.t2i_r1, t2i_r5=r.t2i_r5)
    target = _targets(data.labels, data.classes)
    pred = classify_features(img, _class_weights(model, probe, data.classes)).cpu()
    novel = torch.tensor([World.classes[int(y)] not in World.pretrain_classes for y in data.labels])
    out["acc_test"] = float((pred == target).float().mean())
    out["acc_novel"] = float((pred == target)[novel].float().mean()) if novel.any() else None
    h_img = encode_images(model, data.heldout_images)
    h_pred = classify_features(h_img, _class_weights(model, probe, data.heldout_classes)).cpu()
    out["acc_heldout"] = float((h_pred == _targets(data.heldout_labels, data.heldout_classes)).float().mean())
    return out


def _targets(labels: torch.Tensor, classes: Sequence[str]) -> torch.Tensor:
    index = {World.classes.index(c): i for i, c in enumerate(classes)}
    return torch.tensor([index[int(y)] for y in labels])


def _class_weights(model: ClipBackend, probe: nn.Module | None, classes: Sequence[str]) -> torch.Tensor:
    """(C, D) class embeddings: the zero-shot head of the model's own text tower, or the probe's rows."""
    if probe is None:
        return model.zero_shot_head(list(classes)).weight
    return probe.head.weight[[probe.head.class_index(c) for c in classes]]


def fresh_copy(base: ClipBackend) -> ClipBackend:
    """A deep copy of the weights that shares the tokenizer (copying its BPE tables costs a second)."""
    module_state = ("_parameters", "_buffers", "_modules")
    shared = {id(v): v for k, v in vars(base).items()
              if k not in module_state and not isinstance(v, (torch.Tensor, nn.Module))}
    return copy.deepcopy(base, memo=shared)


def run_cell(cell: Cell, cfg: Config, base: ClipBackend, batches: Batches, data: EvalData,
             keep: Path | None = None) -> dict:
    """Train and evaluate one cell on a copy of `base`; `keep` saves its adapter state there."""
    model = fresh_copy(base)
    setup = setup_cell(cell, model, cfg, data.classes)
    if keep is not None:
        from workbench.methods.mode_approx import adapter_state_dict

        init_state = adapter_state_dict(model, trained=False)
    t0 = time.perf_counter()
    history = []
    if METHODS[cell.method].sweep != "none" and cfg.steps > 0:
        history = train_cell(cell, setup, batches, cfg, data.classes).history
    t1 = time.perf_counter()
    if keep is not None:
        save_atomic({"trained": adapter_state_dict(model, trained=False), "init": init_state}, keep)
    if cell.method in MODE_APPROX_VARIANTS:  # merged: the base model's inference cost, same numbers
        from workbench.methods.mode_approx import merge

        merge(model)
    metrics = evaluate(model, data, setup.probe)
    return {"method": cell.method, "rank": cell.rank, "seed": cell.seed, "id": cell.id,
            "trainable": setup.trainable, "total": setup.total, **metrics,
            "final_loss": history[-1]["loss"] if history else None,
            "train_seconds": round(t1 - t0, 2), "eval_seconds": round(time.perf_counter() - t1, 2)}


# ---------------------------------------------------------------------------- run
def load_base(cfg: Config) -> ClipBackend:
    """The model every cell starts from (random initialisation seeded by cfg.model_seed)."""
    torch.manual_seed(cfg.model_seed)
    return load_model(cfg.model, pretrained=cfg.pretrained).eval()


def weights_fingerprint(model: nn.Module) -> str:
    """A hash of every parameter and buffer: cached cells must not outlive a change of weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def cell_folder(cfg: Config, model: ClipBackend) -> Path:
    """Where finished cells of this config and these weights live."""
    key = config_hash({"cell": cfg.cell_key(), "weights": weights_fingerprint(model), "v": CACHE_VERSION})
    path = cache_dir(STUDY) / key
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(cfg: Config | None = None, output_dir: str | Path | None = None, model: ClipBackend | None = None,
        progress: bool = True) -> Result:
    """Run (or resume) the sweep, summarise it, write result.json; returns the Result."""
    cfg = cfg or Config()
    t0 = time.perf_counter()
    out = _output_dir(output_dir, STUDY)
    base = model if model is not None else load_base(cfg)
    world = World(WorldConfig(seed=cfg.world_seed))
    folder = cell_folder(cfg, base)
    keep = Cell("mode_approx", cfg.keep_rank, cfg.seeds[0])
    data = eval_data(cfg, world)
    streams = {s: Batches(world, base, cfg, s) for s in cfg.seeds}
    rows, trained, cached = [], [], []
    bar = tqdm(plan_cells(cfg, base), desc="cp-rank ablation", disable=not progress, dynamic_ncols=True)
    for cell in bar:
        bar.set_postfix_str(cell.id)
        path, adapter = folder / f"{cell.id}.json", folder / f"{cell.id}.adapter.pt"
        if path.is_file() and (cell != keep or adapter.is_file()):
            rows.append(json.loads(path.read_text()))
            cached.append(cell.id)
            continue
        row = run_cell(cell, cfg, base, streams[cell.seed], data, adapter if cell == keep else None)
        write_json_atomic(path, row)
        rows.append(row)
        trained.append(cell.id)
    table = summarise(rows, cfg, base)
    zs = next((r for r in table if r["method"] == "zero_shot"), None)
    factors = load_factors(folder / f"{keep.id}.adapter.pt", keep) if keep.id in trained + cached else None
    result = Result(cfg, rows, table, {m: zs[m] for m in METRICS} if zs else {}, real_scale_rows(cfg), factors,
                    "", out, 0.0, trained, cached)
    result.findings = findings(result)
    result.seconds = round(time.perf_counter() - t0, 2)
    result.write()
    return result


def summarise(rows: list[dict], cfg: Config, model: ClipBackend) -> list[dict]:
    """One row per (method, rank): mean and std over seeds of every metric, trainable count."""
    matches = lora_matches(cfg, model) if {"lora", "mode_approx"} & set(cfg.methods) else {}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["rank"]), []).append(r)
    table = []
    for (method, rank), rs in groups.items():
        row = {"method": method, "label": METHODS[method].label, "rank": rank, "seeds": len(rs),
               "trainable": rs[0]["trainable"], "trainable_pct": round(100 * rs[0]["trainable"] / rs[0]["total"], 4)}
        for m in METRICS:
            values = [r[m] for r in rs if r[m] is not None]
            row[m] = round(statistics.fmean(values), 4) if values else None
            row[f"{m}_std"] = round(statistics.stdev(values), 4) if len(values) > 1 else (0.0 if values else None)
        if method == "lora":
            row["matches_R"] = [R for R, mt in matches.items() if mt.rank == rank]
        if method == "mode_approx" and rank in matches:
            row["lora_rank"], row["lora_params"] = matches[rank].rank, matches[rank].params
        row["train_seconds"] = round(statistics.fmean(r["train_seconds"] for r in rs), 2)
        table.append(row)
    return table


# ---------------------------------------------------------------------------- learned factors
_KIND = {"q": "q", "k": "k", "v": "v", "out": "out", "c_fc": "fc1", "c_proj": "fc2", "q_proj": "q",
         "k_proj": "k", "v_proj": "v", "out_proj": "out", "fc1": "fc1", "fc2": "fc2"}
_ORDER = ("q", "k", "v", "out", "fc1", "fc2")


def mode_label(name: str) -> tuple[tuple, str]:
    """A mode-vector parameter name -> (sort key, short label like "V0 q" or "T2 fc1")."""
    import re

    tower = "V" if ("visual." in name or "vision_model." in name) else "T"
    block = re.search(r"(?:resblocks|layers)\.(\d+)\.", name)
    b = int(block.group(1)) if block else -1
    parts = name.split(".")
    i = parts.index("mode_approx_lambda")
    leaf = parts[i + 1] if i + 1 < len(parts) else parts[i - 1]  # MHA: ...lambda.q; linear: c_fc.lambda
    kind = _KIND.get(leaf, leaf)
    return (tower != "V", b, _ORDER.index(kind) if kind in _ORDER else 9), f"{tower}{b} {kind}"


def load_factors(path: Path, cell: Cell) -> FactorSnapshot | None:
    """Shared U, V, core and every mode vector of a saved mode-approx adapter (None: not shared)."""
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state = saved["trained"]
    U = [v for k, v in state.items() if k.startswith("mode_approx_shared.U.")]
    V = [v for k, v in state.items() if k.startswith("mode_approx_shared.V.")]
    if not U:
        return None
    return FactorSnapshot(rank=cell.rank, form="tucker", seed=cell.seed, U=U[0], V=V[0],
                          core=state.get("mode_approx_shared.core"), modes=_modes(state),
                          modes_init=_modes(saved["init"]))


def _modes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every mode vector of an adapter state, one per d x d block, labelled and in model order."""
    modes: list[tuple[tuple, str, torch.Tensor]] = []
    for name, lam in state.items():
        if "mode_approx_lambda" not in name:
            continue
        key, label = mode_label(name)
        blocks = lam.reshape(-1, lam.shape[-1])  # (n_out * n_in, R)
        for j, vec in enumerate(blocks):
            modes.append(((*key, j), label if len(blocks) == 1 else f"{label}.{j}", vec))
    modes.sort(key=lambda t: t[0])
    return {label: vec for _, label, vec in modes}


# ---------------------------------------------------------------------------- real-scale arithmetic
def real_scale_rows(cfg: Config) -> list[dict]:
    """Part A's real-scale parameter table (cached on disk: building the models takes a while)."""
    if cfg.real_scale == "off":
        return []
    from workbench.methods.mode_approx import real_scale_table

    if cfg.real_scale == "formula":  # no models built: the paper's BLIP-base formula rows only
        return [_scale_row(r) for r in real_scale_table(cfg.ranks, models={})]
    path = cache_dir(STUDY) / f"real-scale-{config_hash({'ranks': cfg.ranks, 'v': CACHE_VERSION})}.json"
    if path.is_file():
        return json.loads(path.read_text())
    rows = [_scale_row(r) for r in real_scale_table(cfg.ranks)]
    write_json_atomic(path, rows)
    return rows


def _scale_row(row) -> dict:
    """A ScaleRow as a flat dict, its share of the base model's parameters included."""
    out = dataclasses.asdict(row)
    for name in ("share_pct", "total_pct"):  # properties of the row (percentages of the base model)
        value = getattr(row, name, None)
        if value is not None:
            out[name] = round(float(value), 4)
    return out


# ---------------------------------------------------------------------------- findings
def fmt(row: dict | None, metric: str) -> str:
    if row is None or row.get(metric) is None:
        return "n/a"
    std = row.get(f"{metric}_std")
    return f"{row[metric]:.3f}" + (f" ± {std:.3f}" if row.get("seeds", 1) > 1 and std is not None else "")


def _row(result: Result, method: str, rank: int | None = None) -> dict | None:
    return next((r for r in result.table if r["method"] == method and (rank is None or r["rank"] == rank)), None)


def _n_images(metric: str, cfg: Config) -> int:
    """How many evaluation items a metric is measured on (for its sampling noise)."""
    if metric == "acc_heldout":
        return cfg.n_heldout
    if metric == "acc_novel":
        return max(1, round(cfg.n_eval * len(World.novel_classes) / len(World.classes)))
    return cfg.n_eval


def _differs(a: dict, b: dict, metric: str, cfg: Config) -> int:
    """+1 / -1 when a's mean is above / below b's beyond noise, else 0.

    Noise: 2 x the combined spread over seeds and the binomial standard error of each mean
    (the evaluation set is finite; with one seed that is the only noise we can estimate).
    """
    n = _n_images(metric, cfg)
    var = 0.0
    for r in (a, b):
        p, k = r[metric], max(r.get("seeds", 1), 1)
        var += (r.get(f"{metric}_std") or 0.0) ** 2 / k + max(p * (1 - p), 1 / n) / (n * k)
    gap = a[metric] - b[metric]
    return 0 if abs(gap) <= 2 * var ** 0.5 else (1 if gap > 0 else -1)


def findings(result: Result) -> str:
    """An honest paragraph written from the numbers (whatever the rank curve shows)."""
    cfg, out = result.config, []
    zs = _row(result, "zero_shot")
    if zs:
        out.append(f"Zero-shot on {cfg.test_split}: accuracy {zs['acc_test']:.3f} over "
                   f"{len(World.classes)} classes, {zs['acc_novel']:.3f} on the 4 never-seen classes' images, "
                   f"image->text R@1 {zs['i2t_r1']:.3f}; heldout {zs['acc_heldout']:.3f}.")
    out += _rank_findings(result) + _lora_findings(result) + _ablation_findings(result)
    out += _baseline_findings(result)
    out.append(f"Setting: {cfg.steps} steps of batch {cfg.batch_size}, {len(cfg.seeds)} seed(s), "
               f"{cfg.n_eval} test pairs; a small model and short runs, so read differences against the ± "
               f"(std over seeds) and not as the paper's BLIP-base numbers.")
    return " ".join(out)


COMPARE = ("acc_test", "acc_novel", "i2t_r1", "t2i_r1")  # the task metrics comparisons count


def _rank_findings(result: Result) -> list[str]:
    rows = sorted(result.rows("mode_approx"), key=lambda r: r["rank"])
    if not rows:
        return []
    curve = ", ".join(f"R={r['rank']} {fmt(r, 'acc_novel')}" for r in rows)
    best = max(rows, key=lambda r: r["acc_test"])
    text = [f"Mode approximation (Tucker core, shared), accuracy on the novel classes' images by rank: {curve}. "
            f"Best accuracy over all test classes at R={best['rank']}: {fmt(best, 'acc_test')} with "
            f"{best['trainable']:,} trainable parameters ({best['trainable_pct']:.3f}%)."]
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        moves = []
        for m in ("acc_novel", "acc_test", "i2t_r1", "acc_heldout"):
            d = _differs(hi, lo, m, result.config)
            moves.append(f"{m} {lo[m]:.3f} -> {hi[m]:.3f} ({ {1: 'up', -1: 'down', 0: 'within noise'}[d] })")
        text.append(f"From R={lo['rank']} to R={hi['rank']}: " + "; ".join(moves) + ".")
    return text


def _lora_findings(result: Result) -> list[str]:
    """Mode approx vs LoRA at the nearest parameter count, over ranks and the task metrics."""
    tally = {1: 0, -1: 0, 0: 0}
    per_rank, over = [], []
    for ma in result.rows("mode_approx"):
        lora = _row(result, "lora", ma.get("lora_rank"))
        if lora is None:
            continue
        votes = [_differs(ma, lora, m, result.config) for m in COMPARE]
        for v in votes:
            tally[v] += 1
        per_rank.append(f"R={ma['rank']} (LoRA r={lora['rank']}): {votes.count(1)} better, {votes.count(-1)} worse")
        if lora["trainable"] > 1.5 * ma["trainable"]:
            over.append(ma["rank"])
    if not per_rank:
        return []
    text = [f"Against LoRA at the nearest parameter count, over {', '.join(COMPARE)} (beyond noise): "
            + "; ".join(per_rank) + "."]
    total = sum(tally.values())
    if tally[1] and tally[1] >= max(2 * tally[-1], total / 4):
        text.append("On balance mode approximation comes out ahead, in line with the paper's claim.")
    elif tally[-1] and tally[-1] >= max(2 * tally[1], total / 4):
        text.append("On balance LoRA comes out ahead, unlike the paper's claim that mode approximation matches "
                    "or beats LoRA-style tuning.")
    else:
        text.append("Neither comes out ahead on balance: the paper's advantage over LoRA does not show clearly "
                    "at this scale.")
    if over:
        smallest = min(r["trainable"] for r in result.rows("lora"))
        text.append(f"At R={over} LoRA cannot be made as small (its smallest holds {smallest:,} parameters): "
                    "there mode approximation works with fewer parameters than any LoRA.")
    return text


def _ablation_findings(result: Result) -> list[str]:
    text = []
    names = {"mode_approx_cp": "the CP (diagonal-core) form", "mode_approx_noshare": "sharing off",
             "mode_approx_gated": "the gated query transformation", "mode_approx_context": "context enhancement"}
    for method, what in names.items():
        for row in result.rows(method):
            ref = _row(result, "mode_approx", row["rank"])
            if ref is None:
                continue
            votes = [_differs(row, ref, m, result.config) for m in COMPARE]
            verdict = (f"is better on {votes.count(1)} and worse on {votes.count(-1)} of the {len(COMPARE)} task "
                       f"metrics" if any(votes) else "changes nothing beyond noise")
            text.append(f"At R={row['rank']}, {what} {verdict} (novel-class accuracy {fmt(row, 'acc_novel')} vs "
                        f"{fmt(ref, 'acc_novel')}; {row['trainable']:,} vs {ref['trainable']:,} parameters).")
    return text


def _baseline_findings(result: Result) -> list[str]:
    parts = []
    for method in ("full_ft", "bitfit", "loha", "lokr", "vera", "linear_probe"):
        row = _row(result, method)
        if row is not None:
            parts.append(f"{METHODS[method].label} {fmt(row, 'acc_test')} ({row['trainable']:,} params, "
                         f"heldout {row['acc_heldout']:.3f})")
    text = [f"Baselines (accuracy on {result.config.test_split}): " + "; ".join(parts) + "."] if parts else []
    zs, ma = _row(result, "zero_shot"), _row(result, "mode_approx", result.config.keep_rank)
    if zs and ma:
        cost = zs["acc_heldout"] - ma["acc_heldout"]
        text.append(f"Adapting costs mode approx (R={ma['rank']}) {100 * cost:+.1f} points on heldout "
                    f"({zs['acc_heldout']:.3f} -> {fmt(ma, 'acc_heldout')}).")
    return text


def display_rows(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> list[dict]:
    """The methods table with "mean ± std" strings, for a Markdown table."""
    out = []
    for r in rows:
        extra = f" (matches R={r['matches_R']})" if r.get("matches_R") else ""
        out.append({"method": r["label"] + extra, "rank": r["rank"], "trainable": f"{r['trainable']:,}",
                    "trainable %": f"{r['trainable_pct']:.4f}", **{m: fmt(r, m) for m in metrics}})
    return out


def format_table(rows: Sequence[dict], metrics: Sequence[str] = METRICS) -> str:
    """The methods table as fixed-width text (mean ± std over seeds)."""
    head = f"{'method':40} {'rank':>4} {'params':>10} " + " ".join(f"{m:>14}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{fmt(r, m):>14}" for m in metrics)
        rank = "-" if r["rank"] is None else r["rank"]
        lines.append(f"{r['label'][:40]:40} {rank:>4} {r['trainable']:>10,} {cells}")
    return "\n".join(lines)
