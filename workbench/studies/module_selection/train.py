"""Study 04's training: multi-task training of a modular model from the tiny towers, a vision encoder
trained for direction alone, and the "Mind the Gap" contrastive fine-tuning of the dual encoder at a
fixed temperature."""
from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.data import modular_tasks as mt
from workbench.engine import param_groups
from workbench.models import ClipBackend
from workbench.world import ALL_CLASSES, DIRECTIONS, World
from workbench.world.captions import article

from .data import TRAIN_STRIDE, caption_vocab, train_batch


class Trained(NamedTuple):
    model: nn.Module
    seconds: float
    losses: list[float]  # the summed task loss per step


def build_modular(base: ClipBackend, cfg: Any, k, temporal: bool, seed: int, shared: bool = True,
                  ) -> tuple[nn.Module, ClipBackend]:
    """A ModularModel around a copy of `base`'s towers with k shared layers (or, `shared=False`, k layers
    that are copies of the text blocks) and heads for the world's tasks, and that copy (the model holds its
    modules: their tensors are the pretrained ones)."""
    from workbench.methods.modular import ModularConfig, ModularModel

    mc = ModularConfig(shared_layers=k, latents=cfg.latents, temporal=temporal, vocab=caption_vocab(base),
                       classes=len(ALL_CLASSES), answers=len(mt.ANSWERS), seed=seed, shared_weights=shared,
                       frame_tokens=cfg.frame_tokens, temporal_cls=cfg.temporal_cls)
    towers = base.copy()
    model = ModularModel.from_backend(towers, mc)
    with torch.no_grad():  # the classifier starts as tiny-world-clip's zero-shot head over the world's classes
        prompts = towers.tokenize([f"a photo of {article(c)}." for c in ALL_CLASSES])
        model.heads["classifier"].init_from(towers.encode_text(prompts), float(towers.logit_scale.exp()))
    return model, towers


def task_path(task: str, temporal: bool) -> tuple[str, ...]:
    """The task's default path; without temporal modules, the same path less 'temporal' (clips: frame mean)."""
    from workbench.methods.modular import TASKS

    return tuple(m for m in TASKS[task].path if temporal or m != "temporal")


def task_loss(task: str, out, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training loss of one task's output: the model's own when it gives one, else CLIP's / cross-entropy."""
    if getattr(out, "loss", None) is not None:
        return out.loss
    if task in ("qa", "classification"):
        return F.cross_entropy(out.logits, batch["targets"])
    raise ValueError(f"the modular model gave no loss for task {task!r} with targets; cannot train it")


COPIED = ("universal.blocks.",)  # parameters that start as copies of the towers' (the unshared universal layers)


def _groups(model: nn.Module, base: ClipBackend, cfg: Any, new_lr: float | None = None) -> list[dict]:
    """Pretrained tensors (those the model took from the towers, or copies of them: `COPIED`) at cfg.lr, new
    modules at `new_lr` (default cfg.new_lr)."""
    ptrs = {p.data_ptr() for p in base.parameters()}
    pretrained = lambda n, p: p.data_ptr() in ptrs or n.startswith(COPIED)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    old = [(n, p) for n, p in named if pretrained(n, p)]
    new = [(n, p) for n, p in named if not pretrained(n, p)]
    groups = []
    for params, lr in ((old, cfg.lr), (new, cfg.new_lr if new_lr is None else new_lr)):
        for g in param_groups(params, cfg.weight_decay):
            groups.append({**g, "lr": lr})
    return [g for g in groups if g["params"]]


def _warmup_cosine(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first tenth of `steps`, then cosine decay to 0."""
    warm = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(s, steps) / max(steps, 1))))


def _optimise(model: nn.Module, opt: torch.optim.Optimizer, sched, loss: torch.Tensor) -> float:
    """One step: backward, gradients clipped to norm 1, optimiser and schedule stepped; the loss's value."""
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(loss.detach())


def answer_tokens(base: ClipBackend) -> torch.Tensor:
    """Every QA answer (`modular_tasks.ANSWERS`) as decoder text: token ids (A, L), L the longest answer's."""
    ids = base.tokenize(list(mt.ANSWERS))
    return ids[:, :int((ids != 0).sum(1).max())]


def task_schedule(tasks: tuple[str, ...], weights: tuple[int, ...] | None, steps: int) -> list[str]:
    """The task of every training step: `weights[i]` steps of `tasks[i]` in each cycle of sum(weights) steps,
    spread evenly through the cycle (smooth weighted round robin, integer arithmetic: the same on any
    machine); None: one step of each in turn."""
    weights = weights or (1,) * len(tasks)
    credit, total, order = [0] * len(tasks), sum(weights), []
    for _ in range(total):
        credit = [c + w for c, w in zip(credit, weights)]
        i = max(range(len(tasks)), key=lambda j: (credit[j], -j))
        credit[i] -= total
        order.append(tasks[i])
    return [order[s % total] for s in range(steps)]


def train_modular(base: ClipBackend, world: World, cfg: Any, k, temporal: bool, seed: int,
                  shared: bool = True) -> Trained:
    """cfg.steps steps of AdamW, one task per step (`task_schedule`: cfg.task_weights steps of each task per
    cycle), each along its default path. With cfg.qa_scoring "decoder_rank" QA trains the decoder to write
    the answer (next-token loss)."""
    torch.manual_seed(seed)
    model, towers = build_modular(base, cfg, k, temporal, seed, shared)
    device = next(base.parameters()).device
    model.to(device).train()
    opt = torch.optim.AdamW(_groups(model, towers, cfg), fused=cfg.fused_adamw)
    sched = _warmup_cosine(opt, cfg.steps)
    answers = answer_tokens(base).to(device) if cfg.qa_scoring == "decoder_rank" else None
    losses, t0 = [], time.perf_counter()
    for step, task in enumerate(task_schedule(cfg.tasks, cfg.weights, cfg.steps)):
        batch = {k_: v.to(device) for k_, v in train_batch(cfg, world, base, task, seed, step).items()}
        if task == "qa" and answers is not None:  # answers as text: the decoder's language-model loss
            batch["targets"] = answers[batch["targets"]]
        loss = task_loss(task, model.run(task, batch, path=task_path(task, temporal)), batch)
        losses.append(_optimise(model, opt, sched, loss))
    model.eval()
    return Trained(model, time.perf_counter() - t0, losses)


class DirectionModel(nn.Module):
    """A vision encoder (temporal modules on or off) and a linear 4-way direction head on its clip embedding."""

    def __init__(self, vision: nn.Module, temporal: bool):
        super().__init__()
        self.vision, self.temporal = vision, temporal
        self.head = nn.Linear(vision.visual.output_dim, len(DIRECTIONS))

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        return self.vision.pool(self.vision.tokens(clips, temporal=self.temporal))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(clips))


def train_direction(base: ClipBackend, world: World, cfg: Any, temporal: bool, seed: int) -> Trained:
    """tiny-world-clip's vision encoder (with zero-initialised temporal modules, or without: frame mean)
    trained for `cfg.direction_steps` steps on direction of motion alone (cross-entropy of a linear head
    over the 4 directions), on the same training clips as the multi-task model: the temporal modules and
    head at cfg.direction_new_lr, tiny-world-clip's own weights frozen (cfg.direction_frozen) or at cfg.lr.

    What the encoder can represent given a direct signal, beside what the task mixture teaches it: a
    frame-mean encoder gives a clip and its reversal one embedding, so it cannot pass 0.5."""
    from workbench.methods.modular import VisionEncoder

    torch.manual_seed(seed)
    towers = base.copy()
    model = DirectionModel(VisionEncoder.from_backend(towers, temporal, cfg.temporal_cls), temporal)
    if cfg.direction_frozen:  # only the temporal modules and the head learn
        for p in towers.parameters():
            p.requires_grad_(False)
    device = next(base.parameters()).device
    model.to(device).train()
    opt = torch.optim.AdamW(_groups(model, towers, cfg, cfg.direction_new_lr))
    sched = _warmup_cosine(opt, cfg.direction_steps)
    losses, t0 = [], time.perf_counter()
    for step in range(cfg.direction_steps):
        start = seed * TRAIN_STRIDE + step * cfg.batch_size
        s = mt.task_set("video_retrieval", world, cfg.train_split, range(start, start + cfg.batch_size), cfg.frames)
        loss = F.cross_entropy(model(s.media.to(device)), s.direction.to(device))
        losses.append(_optimise(model, opt, sched, loss))
    model.eval()
    return Trained(model, time.perf_counter() - t0, losses)


def train_temperature(base: ClipBackend, world: World, cfg: Any, temperature: float, seed: int) -> Trained:
    """Contrastive fine-tuning of a copy of the dual encoder with the temperature fixed at `temperature`."""
    torch.manual_seed(seed)
    model = base.copy()
    device = next(base.parameters()).device
    model.to(device).train()
    params = [(n, p) for n, p in model.named_parameters() if "logit_scale" not in n]
    for n, p in model.named_parameters():
        p.requires_grad_("logit_scale" not in n)
    opt = torch.optim.AdamW(param_groups(params, cfg.weight_decay), lr=cfg.temperature_lr)
    losses, t0 = [], time.perf_counter()
    target = torch.arange(cfg.batch_size * 2, device=device)
    for step in range(cfg.temperature_steps):
        start = seed * 100_000 + step * cfg.batch_size * 2
        b = world.batch(cfg.train_split, range(start, start + cfg.batch_size * 2))
        img = model.encode_image(b.images.to(device), normalize=True)
        txt = model.encode_text(model.tokenize(b.captions).to(device), normalize=True)
        logits = img @ txt.T / temperature
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return Trained(model, time.perf_counter() - t0, losses)
