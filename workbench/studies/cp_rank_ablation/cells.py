"""Study 02's grid and one cell's work: plan the (method, rank, seed) cells, train one, measure it."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from workbench.engine import TrainConfig, save_atomic, train
from workbench.eval.retrieval import classify_features, encode_images, encode_pairs, retrieval_from_features
from workbench.methods import baselines as bl
from workbench.models import ClipBackend, load_model
from workbench.world import World, zero_shot_templates

from .. import kit
from .config import Config
from .methods import METHODS, Setup, mode_approx_config

METRICS = ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "acc_test", "acc_novel", "acc_heldout")
METRIC_NOTES = {
    "i2t_r1": "image->text recall@1 (test split)", "i2t_r5": "image->text recall@5",
    "t2i_r1": "text->image recall@1", "t2i_r5": "text->image recall@5",
    "acc_test": "zero-shot-head accuracy over all test classes",
    "acc_novel": "the same, on images of the classes pretraining never saw",
    "acc_heldout": "accuracy on heldout (pretraining classes): what adapting costs there",
}


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


# ---------------------------------------------------------------------------- the grid
def load_base(cfg: Config) -> ClipBackend:
    """The model every cell starts from (random initialisation seeded by cfg.model_seed)."""
    torch.manual_seed(cfg.model_seed)
    return load_model(cfg.model, pretrained=cfg.pretrained, device=kit.device(cfg.device)).eval()


def mode_approx_budget(model: ClipBackend, rank: int, cfg: Config) -> int:
    """Trainable parameters of the default mode-approx adapter at rank R on `model` (the formula)."""
    from workbench.methods.mode_approx import formula_param_count

    return formula_param_count(mode_approx_config("mode_approx", rank, 0, cfg), model)


def lora_matches(cfg: Config, model: ClipBackend) -> dict[int, bl.RankMatch]:
    """Mode-approx R -> the LoRA rank with the nearest parameter count."""
    return {R: bl.lora_rank_for_budget(model, mode_approx_budget(model, R, cfg)) for R in cfg.ranks}


def settings(method: str, cfg: Config, model: ClipBackend) -> list[int | None]:
    """The ranks a method runs at: its sweep ("rank", "ablation", "matched" to the mode-approx
    budgets, "fixed" at its Config rank field or rank-free)."""
    spec = METHODS[method]
    if spec.sweep == "rank":
        return list(cfg.ranks)
    if spec.sweep == "ablation":
        return list(cfg.ablation_ranks)
    if spec.sweep == "matched":
        return sorted({m.rank for m in lora_matches(cfg, model).values()})
    return [getattr(cfg, spec.info["rank_field"]) if "rank_field" in spec.info else None]


def plan_cells(cfg: Config, model: ClipBackend) -> list[kit.Cell]:
    """Every (method, rank, seed) the config asks for; LoRA ranks matched to R are deduplicated."""
    cells: list[kit.Cell] = []
    for method in cfg.methods:
        if METHODS[method].sweep == "none":
            cells.append(kit.Cell(method))  # deterministic: one cell for every seed
        else:
            cells += [kit.Cell(method, r, s) for r in settings(method, cfg, model) for s in cfg.seeds]
    return cells


# ---------------------------------------------------------------------------- one cell
def _feed(setup: Setup, batches: Batches, classes: Sequence[str]) -> Callable[[int], dict]:
    if setup.probe is None:
        return lambda step: {k: v for k, v in batches(step).items() if k != "labels"}
    index = {World.classes.index(c): i for i, c in enumerate(classes)}  # labels in the probe's class order

    def feed(step: int) -> dict:
        b = batches(step)
        return {"images": b["images"], "labels": torch.tensor([index[int(y)] for y in b["labels"]])}
    return feed


def train_cell(cell: kit.Cell, setup: Setup, batches: Batches, cfg: Config, classes: Sequence[str]):
    """Train the cell's objective on its seed's batches; returns the engine's TrainResult."""
    tcfg = TrainConfig(steps=cfg.steps, lr=getattr(cfg, METHODS[cell.method].lr), weight_decay=cfg.weight_decay,
                       warmup=cfg.warmup, grad_clip=1.0, seed=cell.seed, log_every=max(1, cfg.steps // 5))
    return train(setup.objective, _feed(setup, batches, classes), tcfg, progress=False, desc=cell.id)


def _targets(labels: torch.Tensor, classes: Sequence[str]) -> torch.Tensor:
    index = {World.classes.index(c): i for i, c in enumerate(classes)}
    return torch.tensor([index[int(y)] for y in labels])


def _class_weights(model: ClipBackend, probe: nn.Module | None, classes: Sequence[str]) -> torch.Tensor:
    """(C, D) class embeddings: the zero-shot head of the model's own text tower, or the probe's rows."""
    if probe is None:
        return model.zero_shot_head(list(classes), zero_shot_templates()).weight
    return probe.head.weight[[probe.head.class_index(c) for c in classes]]


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
    correct = pred == target
    out["acc_test"] = float(correct.float().mean())
    out["acc_novel"] = float(correct[novel].float().mean()) if novel.any() else None
    h_img = encode_images(model, data.heldout_images)
    h_pred = classify_features(h_img, _class_weights(model, probe, data.heldout_classes)).cpu()
    h_correct = h_pred == _targets(data.heldout_labels, data.heldout_classes)
    out["acc_heldout"] = float(h_correct.float().mean())
    # per-item correctness, for paired intervals over seeds and items (workbench.studies.kit.stats)
    out.update(acc_test_items=correct.int().tolist(), acc_novel_items=correct[novel].int().tolist(),
               acc_heldout_items=h_correct.int().tolist())
    return out


def run_cell(cell: kit.Cell, cfg: Config, base: ClipBackend, batches: Batches, data: EvalData,
             keep: Path | None = None) -> dict:
    """Train and evaluate one cell on a copy of `base`; `keep` saves its adapter state there."""
    model = base.copy()
    torch.manual_seed(cell.seed or 0)  # adapter initialisation (peft draws from the global generator)
    setup = METHODS[cell.method].run(model, cell, cfg, data.classes)
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
    if METHODS[cell.method].info.get("mode_approx"):  # merged: the base model's inference cost, same numbers
        from workbench.methods.mode_approx import merge

        merge(model)
    metrics = evaluate(model, data, setup.probe)
    return {"trainable": setup.trainable, "total": setup.total, **metrics,
            "final_loss": history[-1]["loss"] if history else None,
            "train_seconds": round(t1 - t0, 2), "eval_seconds": round(time.perf_counter() - t1, 2)}
