"""Study 04's grid and one cell's work: plan the (method, setting, seed) cells, train one, measure it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from workbench.data import modular_tasks as mt
from workbench.models import ClipBackend
from workbench.world import ALL_CLASSES, World
from workbench.world.captions import article

from .. import kit
from .data import EvalData, first_items
from .dual import DualEncoder
from .measure import (
    SCORE,
    cosines,
    evaluate,
    head_direction_metrics,
    path_table,
    retrieval_metrics,
    shift_minimum,
    shift_rows,
    text_embeddings,
)
from .train import task_path, train_direction, train_modular, train_temperature
from .trivial import trivial_metrics

KEPT = "kept"  # a row's key for what figures and the explorer draw (first seed only; not in result.json)
EMBED_DECIMALS = 4


@dataclass
class Context:
    """What every cell reads: the config, the pretrained dual encoder, the world and the fixed test sets."""

    cfg: Any
    base: ClipBackend
    world: World
    data: EvalData
    class_prompts: torch.Tensor  # (C, L) "a photo of a {class}." for the shift curve's zero-shot accuracy
    weights: str = ""  # fingerprint of the pretrained towers every cell starts from


def context(cfg: Any, base: ClipBackend, world: World, data: EvalData) -> Context:
    prompts = base.tokenize([f"a photo of {article(c)}." for c in ALL_CLASSES])
    return Context(cfg, base, world, data, prompts, kit.weights_fingerprint(base))


def _round(t: torch.Tensor) -> list:
    return torch.round(t.float(), decimals=EMBED_DECIMALS).tolist()


def _samples(task: str, kept: dict, data: EvalData, n: int) -> list[str]:
    """What a task answers for the first n test items, in words (retrieval: the top-1 caption)."""
    s = data.sets[task]
    if task in ("image_retrieval", "video_retrieval"):
        top = (kept["vision"][:n] @ kept["text"].T).argmax(1)
        return [s.captions[int(j)] for j in top]
    if task == "captioning":
        return kept["captions"][:n]
    names = mt.ANSWERS if task == "qa" else ALL_CLASSES
    return [names[int(p)] for p in kept["pred"][:n]]


def _kept(ctx: Context, kept: dict, path_kept: dict | None = None) -> dict:
    """The first seed's embeddings, cosine distributions and sample outputs (per task and path)."""
    n = ctx.cfg.show_samples
    out: dict[str, Any] = {"embeddings": {}, "cosines": {}, "outputs": {}}
    for task in ("image_retrieval", "video_retrieval"):
        if task in kept:
            e = kept[task]
            out["embeddings"][task] = {"vision": _round(e["vision"]), "text": _round(e["text"])}
            out["cosines"][task] = cosines(e, ctx.data.sets[task].captions)
    for task, k in kept.items():
        out["outputs"].setdefault(task, {})["default"] = _samples(task, k, ctx.data, n)
    for (task, path), k in (path_kept or {}).items():
        out["outputs"].setdefault(task, {})[path] = _samples(task, k, ctx.data, n)
    return out


def dual_encoder_cell(ctx: Context, cell: kit.Cell) -> dict:
    """tiny-world-clip as shipped: retrieval, the gap, direction from frame means, the shift curve."""
    model = DualEncoder(ctx.base)
    tasks = [t for t in ("image_retrieval", "video_retrieval") if t in ctx.data.sets]
    metrics, kept = evaluate(model, ctx.data, {t: None for t in tasks})
    scale = float(ctx.base.logit_scale.detach().exp())
    row = {**metrics, "logit_scale": scale, "train_seconds": 0.0}
    if "image_retrieval" in kept:
        with torch.no_grad():
            class_text = F.normalize(ctx.base.encode_text(ctx.class_prompts).float(), dim=-1)
        row.update(_shifts(ctx, kept["image_retrieval"], class_text, 1.0 / scale))
    row[KEPT] = _kept(ctx, kept)
    return row


def _shifts(ctx: Context, emb: dict, class_text: torch.Tensor, own: float) -> dict:
    """The embedding-shift curve at the model's own learned temperature `own` (1 / its logit scale) with where
    its loss is lowest (`shift_minimum`), and, labelled apart, the curve at CLIP's τ (cfg.shift_temperature)."""
    labels = ctx.data.sets["image_retrieval"].labels
    curve = shift_rows(emb, ctx.cfg.shift_lambdas, own, class_text.cpu(), labels)
    out = {"shift": curve, **shift_minimum(emb, curve)}
    if ctx.cfg.shift_temperature is not None:
        out["shift_clip"] = shift_rows(emb, ctx.cfg.shift_lambdas, ctx.cfg.shift_temperature, class_text.cpu(), labels)
    return out


def trivial_cell(ctx: Context, cell: kit.Cell) -> dict:
    """Every task's score without the media (`trivial`): the floor a trained model has to clear."""
    return {**trivial_metrics(ctx.cfg, ctx.world, ctx.data), "train_seconds": 0.0}


def alone_cell(ctx: Context, cell: kit.Cell) -> dict:
    """The modular model (k = default_k, temporal on) trained on one task (cell.setting) alone for the
    mixture's steps, measured on that task: what the task reaches without sharing the steps."""
    cfg = dataclasses.replace(ctx.cfg, tasks=(cell.setting,), task_weights=None)
    trained = train_modular(ctx.base, ctx.world, cfg, cfg.default_k, True, cell.seed)
    with torch.no_grad():
        metrics, _ = evaluate(trained.model, ctx.data, {cell.setting: task_path(cell.setting, True)}, cfg.qa_scoring)
    return {**metrics, "train_seconds": trained.seconds, "final_loss": trained.losses[-1] if trained.losses else None}


def modular_cell(ctx: Context, cell: kit.Cell, temporal: bool, shared: bool = True) -> dict:
    """Train the modular model on the task mixture (k = cell.setting; `shared=False`: the universal layers
    as unshared copies of the text blocks), then measure every task and the learned logit scale; at
    k = default_k with temporal modules and shared layers also every valid path and the shift curves."""
    cfg = ctx.cfg
    trained = train_modular(ctx.base, ctx.world, cfg, cell.setting, temporal, cell.seed, shared)
    model = trained.model
    with torch.no_grad():
        metrics, kept = evaluate(model, ctx.data, {t: task_path(t, temporal) for t in cfg.tasks}, cfg.qa_scoring)
    scale = float(model.heads["contrastive"].logit_scale.detach().exp())
    row = {**metrics, "logit_scale": scale, "train_seconds": trained.seconds,
           "final_loss": sum(trained.losses[-len(cfg.tasks):]), "losses": trained.losses}
    path_kept = None
    if temporal and shared and cell.setting == cfg.default_k:
        if cell.seed in cfg.seeds:  # the module-selection table on `seeds` (not on the claims' extra seeds)
            # not under an outer no_grad: torch's FlopCounterMode then fails (module_flops runs its own no_grad)
            row["paths"], path_kept = path_table(model, first_items(ctx.data, cfg.path_items), cfg.tasks,
                                                 cfg.flops_batch, cfg.qa_scoring)
        if "image_retrieval" in kept:  # the shift curve on every seed: MG-1.k pairs by seed
            with torch.no_grad():
                prompts = ctx.class_prompts.to(next(model.parameters()).device)
                class_text = text_embeddings(model, prompts)
            row.update(_shifts(ctx, kept["image_retrieval"], class_text, 1.0 / scale))
    if cell.seed == cfg.seeds[0] and shared:
        row[KEPT] = _kept(ctx, kept, path_kept)
    return row


def direction_cell(ctx: Context, cell: kit.Cell, temporal: bool) -> dict:
    """tiny-world-clip's vision encoder trained for direction alone (temporal modules on or off), scored on
    the test clips and their reversals."""
    trained = train_direction(ctx.base, ctx.world, ctx.cfg, temporal, cell.seed)
    return {**head_direction_metrics(trained.model, ctx.data), "train_seconds": trained.seconds,
            "final_loss": trained.losses[-1] if trained.losses else None, "losses": trained.losses}


def temperature_cell(ctx: Context, cell: kit.Cell) -> dict:
    """Contrastive fine-tuning at temperature cell.setting: the image-text gap and R@1 afterwards."""
    trained = train_temperature(ctx.base, ctx.world, ctx.cfg, float(cell.setting), cell.seed)
    with torch.no_grad():
        metrics, _ = retrieval_metrics(DualEncoder(trained.model), ctx.data.sets["image_retrieval"],
                                       prefix="image_")
    return {**metrics, "logit_scale": 1.0 / float(cell.setting), "train_seconds": trained.seconds,
            "final_loss": trained.losses[-1] if trained.losses else None}


__all__ = ["KEPT", "SCORE", "Context", "context", "dual_encoder_cell", "modular_cell", "temperature_cell"]
