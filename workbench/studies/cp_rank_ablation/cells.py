"""Study 02's grid and one cell's work: plan the (method, rank, seed) cells, train one, measure it."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.engine import TrainConfig, save_atomic, train
from workbench.eval.retrieval import (
    classify_features,
    encode_images,
    encode_pairs,
    positives,
    retrieval_from_features,
)
from workbench.methods import baselines as bl
from workbench.models import ClipBackend, load_model
from workbench.world import World, WorldConfig, zero_shot_templates

from .. import kit
from .adapters import Setup, mode_approx_config, mode_approx_sites
from .config import Config

METRICS = ("r1", "i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "acc_test", "acc_novel", "acc_heldout")
METRIC_NOTES = {
    "r1": "retrieval recall@1, image->text and text->image averaged (test slice): the headline metric",
    "i2t_r1": "image->text recall@1 (test slice)", "i2t_r5": "image->text recall@5",
    "t2i_r1": "text->image recall@1", "t2i_r5": "text->image recall@5",
    "acc_test": "zero-shot-head accuracy over the test slice's classes",
    "acc_novel": "the same, on images of classes pretraining never saw (novel-word task only)",
    "acc_heldout": "accuracy on heldout photos (pretraining classes): what adapting costs there",
}
CURVE = ("acc", "r1")  # validation curve: accuracy, and recall@1 averaged over both directions


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


@dataclass
class ValData:
    """The validation slice (indices cfg.val_offset.., disjoint from test and training) for curves."""

    images: torch.Tensor  # (V, 3, S, S)
    captions: list[str]
    labels: torch.Tensor  # (V,)
    classes: tuple[str, ...]


def task_world(cfg: Config) -> World:
    """The world of the adaptation task: the pretraining world with backdrops at cfg.backdrop_contrast."""
    return World(WorldConfig(seed=cfg.world_seed, backdrop_contrast=cfg.backdrop_contrast))


def eval_data(cfg: Config, world: World) -> EvalData:
    """The test slice of the task world and the heldout images of the pretraining world (its own contrast)."""
    t = world.batch(cfg.test_split, range(cfg.n_eval))  # the test slice: indices 0 .. n_eval - 1
    h = World(WorldConfig(seed=cfg.world_seed)).batch(cfg.heldout_split, range(cfg.n_heldout))
    return EvalData(t.images, t.captions, t.labels, world.split_classes(cfg.test_split), h.images, h.labels,
                    world.split_classes(cfg.heldout_split))


def val_data(cfg: Config, world: World) -> ValData:
    v = world.batch(cfg.test_split, range(cfg.val_offset, cfg.val_offset + cfg.n_val))
    return ValData(v.images, v.captions, v.labels, world.split_classes(cfg.test_split))


class Batches:
    """`batches(step)` for the engine: a seed's own stream of training batches, rendered once."""

    def __init__(self, world: World, model: ClipBackend, cfg: Config, seed: int):
        self.world, self.model, self.cfg, self.seed = world, model, cfg, seed
        self._memo: dict[int, dict[str, torch.Tensor]] = {}

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        if step not in self._memo:
            B = self.cfg.batch_size
            start = self.cfg.train_offset + (self.seed * self.cfg.steps + step) * B  # seeds: different samples
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


def lora_matches(cfg: Config, model: ClipBackend, sites: bool = False) -> dict[int, bl.RankMatch]:
    """Mode-approx R -> the LoRA rank with the nearest parameter count: LoRA on the attention modules, or with
    `sites` on exactly the modules mode approximation adapts (`lora_same_sites`)."""
    where = {"sites": mode_approx_sites(model, cfg)} if sites else {}
    return {R: bl.lora_rank_for_budget(model, mode_approx_budget(model, R, cfg), **where) for R in cfg.ranks}


# ---------------------------------------------------------------------------- one cell
def _feed(setup: Setup, batches: Batches, classes: Sequence[str]) -> Callable[[int], dict]:
    if setup.probe is None:
        return lambda step: {k: v for k, v in batches(step).items() if k != "labels"}
    index = {World.classes.index(c): i for i, c in enumerate(classes)}  # labels in the probe's class order

    def feed(step: int) -> dict:
        b = batches(step)
        return {"images": b["images"], "labels": torch.tensor([index[int(y)] for y in b["labels"]])}
    return feed


def _watched(feed: Callable[[int], dict], every: int, look: Callable[[int], None]) -> Callable[[int], dict]:
    """`feed`, calling `look(step)` first at every `every`-th step (the model has then taken `step` updates)."""
    def batches(step: int) -> dict:
        if every and step and step % every == 0:
            look(step)
        return feed(step)
    return batches


@torch.no_grad()
def validate(model: ClipBackend, val: ValData, probe: nn.Module | None = None) -> dict[str, float | None]:
    """Validation accuracy and recall@1 (mean of both directions; None for the probe) of a model."""
    img, txt = encode_pairs(model, val.images, val.captions)
    pred = classify_features(img, _class_weights(model, probe, val.classes)).cpu()
    acc = float((pred == _targets(val.labels, val.classes)).float().mean())
    r = retrieval_from_features(img, txt, val.captions)
    return {"acc": acc, "r1": None if probe is not None else (r.i2t_r1 + r.t2i_r1) / 2}


def train_cell(cell: kit.Cell, lr: float, setup: Setup, batches: Batches, cfg: Config, classes: Sequence[str],
               model: ClipBackend | None = None, val: ValData | None = None):
    """Train the cell's objective on its seed's batches, looking at `val` every cfg.eval_every steps;
    returns (the engine's TrainResult, the validation curve [{"step", "acc", "r1"}, ...]).

    Inside a cell computed with checkpoints (`kit.checkpoint()`: a sweep's job), training checkpoints every
    so many steps and resumes from the last checkpoint when the cell is run again (a requeued job). The steps
    before it are not replayed, so the curve's points are kept beside the checkpoint as they are taken
    (`train.curve.json`); on a resume the points before the checkpoint come from there, the rest are taken
    again on the same weights, and the curve is the uninterrupted run's."""
    ck = kit.checkpoint()
    tcfg = TrainConfig(steps=cfg.steps, lr=lr, weight_decay=cfg.weight_decay,
                       warmup=cfg.warmup, grad_clip=1.0, seed=cell.seed, log_every=max(1, cfg.steps // 5),
                       checkpoint_every=ck.every if ck else 0)
    watch = model is not None and val is not None and cfg.eval_every > 0
    kept = ck.path.with_name(ck.path.stem + CURVE_FILE) if ck and watch else None
    points = _kept_curve(kept, ck.path) if kept else {}

    def look(step: int) -> None:
        points[step] = {"step": step, **validate(model, val, setup.probe)}
        setup.objective.train()  # validate() put the towers in eval mode
        if kept:
            kit.write_json_atomic(kept, list(points.values()))

    if watch:
        look(0)
    feed = _watched(_feed(setup, batches, classes), cfg.eval_every if watch else 0, look)
    result = train(setup.objective, feed, tcfg, checkpoint=ck.path if ck else None, progress=False, desc=cell.id)
    if watch:
        look(cfg.steps)
    return result, [points[step] for step in sorted(points)]


CURVE_FILE = ".curve.json"  # <checkpoint stem>.curve.json: the validation points taken so far


def _kept_curve(path: Path, checkpoint: Path) -> dict[int, dict]:
    """The validation points an interrupted run kept ({step: point}). If they cannot be read while its
    checkpoint is there, the points before the checkpoint are lost: the checkpoint is removed (said on
    stderr) and the cell trains from the start, with the same numbers."""
    if not checkpoint.is_file():
        return {}
    try:
        return {int(p["step"]): p for p in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError, KeyError) as err:
        print(f"{checkpoint}: the validation curve kept beside it ({path.name}) is unreadable "
              f"({type(err).__name__}: {err}); training again from the start", file=sys.stderr, flush=True)
        checkpoint.unlink(missing_ok=True)
        return {}


def _targets(labels: torch.Tensor, classes: Sequence[str]) -> torch.Tensor:
    index = {World.classes.index(c): i for i, c in enumerate(classes)}
    return torch.tensor([index[int(y)] for y in labels])


def _class_weights(model: ClipBackend, probe: nn.Module | None, classes: Sequence[str]) -> torch.Tensor:
    """(C, D) class embeddings: the zero-shot head of the model's own text tower, or the probe's rows."""
    if probe is None:
        return model.zero_shot_head(list(classes), zero_shot_templates()).weight
    return probe.head.weight[[probe.head.class_index(c) for c in classes]]


@torch.no_grad()
def evaluate(model: ClipBackend, data: EvalData, probe: nn.Module | None = None,
             gallery: int | None = None) -> dict[str, float | None]:
    """Retrieval and classification numbers of a (tuned) model; a probe classifies with its own head.

    Retrieval ranks within consecutive galleries of `gallery` test pairs (None: one gallery of all), so
    that more test pairs lower the test items' share of a paired interval without making the task harder;
    recall is the mean over every query of every gallery."""
    img, txt = encode_pairs(model, data.images, data.captions)  # (N, D) each
    out: dict[str, float | None] = dict.fromkeys(METRICS[:5])
    if probe is None:  # the probe leaves both towers untouched: its retrieval is the zero-shot one
        out.update(_retrieval(img, txt, data.captions, gallery or len(img)))
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


def galleries(n: int, gallery: int) -> list[tuple[int, int]]:
    """[start, end) of n // gallery consecutive galleries (at least one) of n pairs, sizes within one."""
    k = max(1, n // gallery)
    return [(i * n // k, (i + 1) * n // k) for i in range(k)]


def _retrieval(img: torch.Tensor, txt: torch.Tensor, captions: Sequence[str], gallery: int) -> dict:
    """Recall@1/@5 both ways within consecutive galleries of about `gallery` pairs (len // gallery of them, at
    least one; sizes differ by at most one), averaged over every query, with the per-query recall@1 hits."""
    parts = galleries(len(img), gallery)
    out: dict = {k: 0.0 for k in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5")}
    items: dict[str, list[int]] = {"i2t_r1_items": [], "t2i_r1_items": []}
    for a, b in parts:
        r = retrieval_from_features(img[a:b], txt[a:b], captions[a:b])
        for k in out:
            out[k] += getattr(r, k) * (b - a) / len(img)
        for k, v in _recall_items(img[a:b], txt[a:b], captions[a:b]).items():
            items[k] += v
    return {**out, **items, "r1": (out["i2t_r1"] + out["t2i_r1"]) / 2,
            "r1_items": items["i2t_r1_items"] + items["t2i_r1_items"]}


def _recall_items(img: torch.Tensor, txt: torch.Tensor, captions: Sequence[str]) -> dict[str, list[int]]:
    """Per-query recall@1 hits (0/1) both ways, for item-level paired intervals (kit.stats.paired)."""
    sim = F.normalize(img.float(), dim=-1) @ F.normalize(txt.float(), dim=-1).T  # (N, N)
    pos = positives(captions, len(img), sim.device)
    return {f"{d}_r1_items": pos.gather(1, s.argmax(1, keepdim=True)).squeeze(1).int().tolist()
            for d, s in (("i2t", sim), ("t2i", sim.T))}


def run_cell(cell: kit.Cell, spec: kit.Method, cfg: Config, base: ClipBackend, batches: Batches, data: EvalData,
             keep: Path | None = None, val: ValData | None = None) -> dict:
    """Train and evaluate one cell (`spec`: its method's registry entry) on a copy of `base`; `keep` saves its
    adapter state there."""
    model = base.copy()
    torch.manual_seed(cell.seed or 0)  # adapter initialisation (peft draws from the global generator)
    setup = spec.setup(model, cell, cfg, data.classes)
    if keep is not None:
        from workbench.methods.mode_approx import adapter_state_dict

        init_state = adapter_state_dict(model, trained=False)
    t0 = time.perf_counter()
    history, curve = [], []
    if spec.seeded and cfg.steps > 0:  # unseeded: zero-shot, nothing to train
        trained, curve = train_cell(cell, getattr(cfg, spec.lr), setup, batches, cfg, data.classes, model, val)
        history = trained.history
    t1 = time.perf_counter()
    if keep is not None:
        save_atomic({"trained": adapter_state_dict(model, trained=False), "init": init_state}, keep)
    if spec.info.get("mode_approx"):  # merged: the base model's inference cost, same numbers
        from workbench.methods.mode_approx import merge

        merge(model)
    metrics = evaluate(model, data, setup.probe, cfg.gallery)
    return {"trainable": setup.trainable, "total": setup.total, **metrics,
            "final_loss": history[-1]["loss"] if history else None, "curve": curve,
            "train_seconds": round(t1 - t0, 2), "eval_seconds": round(time.perf_counter() - t1, 2)}
