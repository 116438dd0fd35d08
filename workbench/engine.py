"""One training loop for every method: accelerate for devices, precision and processes.

    result = train(objective, batches, TrainConfig(steps=500, lr=1e-3), checkpoint="runs/x/ckpt.pt")

* `objective` is an nn.Module whose forward(**batch) returns the loss (a tensor or a `Loss`).
  Putting the loss inside forward keeps DistributedDataParallel's gradient sync correct.
* `batches(step)` returns the global batch of that step as a dict; each process takes its
  share (`[rank::world_size]`). A batch that depends only on the step makes runs
  reproducible and resumable without any data-loader state.
* Same seed, same numbers on CPU. On CUDA, bf16 autocast. Under `accelerate launch` or
  `torchrun`, several processes with no code change.
* Checkpoints (trainable parameters, buffers, optimizer, schedule, RNG, history, and the
  training config that decides them) are written to a temporary file and renamed, so an
  interruption never leaves a half-written file; calling `train` again with the same checkpoint
  path resumes where it stopped, and a finished checkpoint returns at once. Resuming with another
  config (steps, lr, seed, objective, ...) is an error naming the differing fields. Checkpoints
  hold only tensors and plain values and load with `weights_only=True`: a crafted file cannot run
  code.
* The scale path (execution options: they change speed, not what is computed, and a checkpoint
  resumes under other values): fused AdamW on CUDA (`fused_adamw`), channels-last images
  (`channels_last`), `torch.compile` of the objective (`compile`), and the models' per-call pixel
  range check (a host-device sync on a GPU) read on the first step only (`input_checks`,
  see `trusted_inputs`). `benchmarks/gpu.py` measures what each buys.
"""
from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Literal, Mapping, NamedTuple

import numpy as np
import torch
import torch.nn as nn
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from workbench.checks import (
    BadType,
    BadValue,
    Check,
    atomic_path,
    check_fields,
    check_number,
    load_error,
    refused_objects,
)

_TRUSTED = [False]  # one flag for the process (not per thread): the engine's loop is single-threaded
INPUT_CHECKS = ("auto", "every", "first")
EXECUTION_FIELDS = ("log_every", "checkpoint_every", "fused_adamw", "channels_last", "compile", "input_checks")


@contextmanager
def trusted_inputs(trusted: bool = True) -> Iterator[None]:
    """Inside the block, models skip their per-call pixel *range* check (`inputs_trusted()` is True).

    The engine enters it after its first step, whose batch was checked in full: the range check is
    a min/max reduction whose result the host reads, i.e. a host-device sync on every call on a
    GPU. Calls outside the block (a user's) are checked as always.
    """
    before = _TRUSTED[0]
    _TRUSTED[0] = bool(trusted)
    try:
        yield
    finally:
        _TRUSTED[0] = before


def inputs_trusted() -> bool:
    """True inside `trusted_inputs()`: pixel values were checked once and are not read again."""
    return _TRUSTED[0]


class Loss(NamedTuple):
    """What an objective returns: the scalar to minimise and named numbers to log."""

    loss: torch.Tensor
    metrics: dict[str, float] = {}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a training run; each field declares what it accepts (workbench.checks), checked on
    construction: a negative lr would ascend the loss, a negative weight decay grow the weights, a
    negative grad_clip reverse the gradient, NaN or infinity anywhere give NaN weights."""

    steps: Annotated[int, Check(ge=0)] = 1000
    lr: Annotated[float, Check(gt=0)] = 1e-3
    weight_decay: Annotated[float, Check(ge=0)] = 0.1
    # fraction of steps spent warming up, then cosine to zero
    warmup: Annotated[float, Check(ge=0, lt=1, note="a fraction of the steps")] = 0.02
    grad_clip: Annotated[float | None, Check(gt=0, note="the largest gradient norm; None disables clipping")] = 1.0
    betas: Annotated[tuple[float, float], Check(ge=0, lt=1)] = (0.9, 0.98)
    seed: Annotated[int, Check(ge=0)] = 0
    log_every: Annotated[int, Check(ge=1)] = 10
    checkpoint_every: Annotated[int, Check(ge=0, note="0 = only at the end")] = 0  # steps between checkpoints
    # "auto" (bf16 on GPU, fp32 on CPU), "no", "bf16", "fp16"
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"
    # execution options (EXECUTION_FIELDS): speed only, not part of what a checkpoint records
    fused_adamw: bool | None = None  # None: fused AdamW on CUDA, the foreach one elsewhere
    channels_last: bool = False  # 4-D tensors of the batch (images) and 4-D weights channels-last
    # torch.compile the objective (True: inductor, a str: that backend)
    compile: Annotated[bool | str, Check(nonblank=True, note="False, True (inductor) or a torch.compile backend "
                                                             "name")] = False
    # "every" step, "first" step only, "auto": first on CUDA, every elsewhere
    input_checks: Literal["auto", "every", "first"] = "auto"

    def __post_init__(self):
        check_fields(self)


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)  # one row per logged step
    steps: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None

    @property
    def final_loss(self) -> float:
        return self.history[-1]["loss"] if self.history else float("nan")


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    warm = max(1, int(cfg.warmup * cfg.steps)) if cfg.warmup > 0 else 0

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, cfg.steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return f


def param_groups(params: Iterable[tuple[str, nn.Parameter]], weight_decay: float,
                 lr: float | None = None) -> list[dict]:
    """Decay matrices only: biases, norms, scales and embeddings' 1-D cousins are left alone.

    `weight_decay` (and `lr`, when given: it is then set on both groups) are checked here, since
    an optimiser built from groups never checks a group's own values: weight_decay >= 0, lr > 0,
    both finite."""
    weight_decay = check_number(weight_decay, "weight_decay", ge=0)
    extra = {} if lr is None else {"lr": check_number(lr, "lr", gt=0)}
    decay, no_decay = [], []
    for _, p in params:
        (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, **extra},
            {"params": no_decay, "weight_decay": 0.0, **extra}]


def _shard(value: Any, rank: int, world: int) -> Any:
    if world == 1:
        return value
    if isinstance(value, (torch.Tensor, list, tuple)):
        return value[rank::world]
    return value


def _to(value: Any, device: torch.device, channels_last: bool = False) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    if channels_last and value.ndim == 4 and value.is_floating_point():
        return value.to(device, non_blocking=True, memory_format=torch.channels_last)
    return value.to(device, non_blocking=True)


def make_optimizer(named: Iterable[tuple[str, nn.Parameter]], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over `named` with the engine's decay groups; fused (one kernel for all tensors) when every
    parameter is on a CUDA device, unless `cfg.fused_adamw` says otherwise."""
    named = list(named)
    fused = cfg.fused_adamw
    if fused is None:
        fused = bool(named) and all(p.device.type == "cuda" and p.is_floating_point() for _, p in named)
    return torch.optim.AdamW(param_groups(named, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                             **({"fused": True} if fused else {}))


def checks_every_step(cfg: TrainConfig, device: torch.device | str) -> bool:
    """Whether models check their inputs' pixel range on every step (else on the first one only)."""
    if cfg.input_checks == "auto":
        return torch.device(device).type != "cuda"
    return cfg.input_checks == "every"


def training_step(acc: Accelerator, model: nn.Module, batch: dict[str, Any], opt, sched,
                  clip: list[nn.Parameter] | None, grad_clip: float | None) -> Loss:
    """One step of the engine's loop on a batch already on the device: autocast forward, backward,
    clipping, optimizer and schedule step. Reads nothing back to the host (no sync)."""
    with acc.autocast():
        out = model(**batch)
    out = out if isinstance(out, Loss) else Loss(out)
    if not isinstance(out.loss, torch.Tensor) or out.loss.ndim != 0:  # dtype and shape only: no host read
        got = (f"a tensor of shape {tuple(out.loss.shape)}" if isinstance(out.loss, torch.Tensor)
               else f"{out.loss!r} ({type(out.loss).__name__})")
        raise TypeError(f"the objective's forward returned {got} as its loss; accepted: a scalar tensor (shape ()) "
                        "or a Loss(loss=<scalar tensor>, metrics={...}); reduce a per-item loss with .mean()")
    acc.backward(out.loss)
    if grad_clip:
        acc.clip_grad_norm_(clip, grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return out


def make_accelerator(mixed_precision: str = "auto") -> Accelerator:
    if mixed_precision == "auto":
        mixed_precision = "bf16" if torch.cuda.is_available() else "no"
    return Accelerator(mixed_precision=mixed_precision)


def _rng_state() -> dict:
    """Every generator's state as tensors and plain values (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos,
                                                      has_gauss, cached],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, inner, gauss = state["python"]
    random.setstate((version, tuple(inner), gauss))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: str | Path) -> None:
    """torch.save to a unique temporary file in the same folder, then rename over the target."""
    with atomic_path(path) as tmp:  # a unique temporary name: two writers never share one
        torch.save(obj, tmp)


def train(
    objective: nn.Module,
    batches: Callable[[int], dict[str, Any]],
    cfg: TrainConfig,
    *,
    params: Iterable[tuple[str, nn.Parameter]] | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = True,
    desc: str = "train",
    accelerator: Accelerator | None = None,
) -> TrainResult:
    """Train `objective`'s trainable parameters (or `params`, named) for `cfg.steps` steps."""
    _check_train_args(objective, batches, cfg, checkpoint)
    acc = accelerator or make_accelerator(cfg.mixed_precision)
    set_seed(cfg.seed)
    named = _named_params(params) if params is not None else [
        (n, p) for n, p in objective.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("nothing to train: no parameter of the objective requires grad" if params is None else
                         f"params={params!r} is empty; accepted: (name, parameter) pairs to train, or None (every "
                         "parameter of the objective that requires grad)")
    trainable = {id(p) for _, p in named}
    objective.to(acc.device)  # before the optimizer: a fused AdamW takes only parameters on the device
    opt = make_optimizer(named, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    result = TrainResult()
    start = 0
    ckpt = Path(checkpoint) if checkpoint else None
    decides = _decides(cfg, objective, named)
    if ckpt and ckpt.is_file():
        start = _resume(ckpt, objective, opt, sched, result, trainable, decides)
    if cfg.channels_last:
        objective.to(memory_format=torch.channels_last)
    model, opt, sched = acc.prepare(objective, opt, sched)
    model.train()
    if cfg.compile:
        model = torch.compile(model, **({"backend": cfg.compile} if isinstance(cfg.compile, str) else {}))
    every = checks_every_step(cfg, acc.device)
    clip = [p for _, p in named]
    t0 = time.perf_counter() - result.seconds
    bar = tqdm(range(start, cfg.steps), desc=desc, initial=start, total=cfg.steps,
               disable=not (progress and acc.is_local_main_process), leave=False, dynamic_ncols=True)
    watch = _LossWatch(acc.device)
    for step in bar:
        given = batches(step)
        if not isinstance(given, Mapping):
            raise TypeError(f"batches({step}) returned a {type(given).__name__}; accepted: a dict of the objective's "
                            "forward arguments (name -> tensor or value)")
        batch = {k: _to(_shard(v, acc.process_index, acc.num_processes), acc.device, cfg.channels_last)
                 for k, v in given.items()}
        with trusted_inputs(not every and step > start):  # the first step's batch is checked in full
            out = training_step(acc, model, batch, opt, sched, clip, cfg.grad_clip)
        watch.see(out.loss, step)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            watch.check(cfg, desc)  # a host read here costs nothing more: the loss is read just below
            row = {"step": step + 1, "loss": float(out.loss.detach()), "lr": sched.get_last_lr()[0],
                   **{k: float(v.detach() if isinstance(v, torch.Tensor) else v)
                      for k, v in out.metrics.items()}}
            result.history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
        done = step + 1
        if ckpt and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            watch.check(cfg, desc)  # never checkpoint non-finite weights
            result.steps, result.seconds = done, time.perf_counter() - t0
            _save(ckpt, acc, objective, opt, sched, result, trainable, decides)
    bar.close()
    watch.check(cfg, desc)
    result.steps = cfg.steps
    result.seconds = time.perf_counter() - t0
    if ckpt and start < cfg.steps:
        _save(ckpt, acc, objective, opt, sched, result, trainable, decides)
    acc.wait_for_everyone()
    return result


def _check_train_args(objective: Any, batches: Any, cfg: Any, checkpoint: Any) -> None:
    """`train`'s arguments, before anything is built: BadType / BadValue naming the one that cannot serve."""
    if not isinstance(objective, nn.Module):
        raise BadType(f"objective={objective!r:.80} is a {type(objective).__name__}; accepted: an nn.Module whose "
                      "forward(**batch) returns the loss")
    if not callable(batches):
        raise BadType(f"batches={batches!r:.80} is a {type(batches).__name__}; accepted: a function step -> dict "
                      "(the batch of that step)")
    if not isinstance(cfg, TrainConfig):
        raise BadType(f"cfg={cfg!r:.80} is a {type(cfg).__name__}; accepted: a TrainConfig")
    if checkpoint is not None and not isinstance(checkpoint, (str, Path)):
        raise BadType(f"checkpoint={checkpoint!r} is a {type(checkpoint).__name__}; accepted: a file path or None")
    if checkpoint and Path(checkpoint).is_dir():
        raise BadValue(f"checkpoint={str(checkpoint)!r} is a folder; accepted: the path of a checkpoint file (made "
                       "when training starts, resumed from when it exists), e.g. <folder>/ckpt.pt")


def _named_params(params: Iterable[Any]) -> list[tuple[str, nn.Parameter]]:
    """`params` as a list of (name, parameter) pairs, or BadType naming the first item that is not one."""
    named = list(params)
    for item in named:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], torch.Tensor)):
            what = (f"a {type(item).__name__} of shape {tuple(item.shape)}" if isinstance(item, torch.Tensor)
                    else f"{item!r:.80} ({type(item).__name__})")
            raise BadType(f"params hold {what}; accepted: (name, parameter) pairs, as model.named_parameters() "
                          "gives them")
    return named


class _LossWatch:
    """The first step whose loss was NaN or infinite, kept on the device (no host sync per step) and read
    where the loop reads anyway (log steps, checkpoints, the end): a diverged run stops with an error
    instead of training on, and saving, NaN weights."""

    def __init__(self, device: torch.device):
        self.step = torch.full((), -1, dtype=torch.long, device=device)
        self.value = torch.zeros((), dtype=torch.float32, device=device)

    def see(self, loss: torch.Tensor, step: int) -> None:
        loss = loss.detach()
        bad = ~torch.isfinite(loss).all()
        first = bad & (self.step < 0)
        self.step = torch.where(first, torch.full_like(self.step, step), self.step)
        self.value = torch.where(first, loss.float().reshape(-1)[0] if loss.numel() else self.value, self.value)

    def check(self, cfg: TrainConfig, desc: str) -> None:
        step = int(self.step)
        if step >= 0:
            raise FloatingPointError(
                f"{desc}: training diverged, the loss was {float(self.value)} at step {step + 1} of {cfg.steps} "
                f"(lr={cfg.lr!r}, weight_decay={cfg.weight_decay!r}, grad_clip={cfg.grad_clip!r}, "
                f"mixed_precision={cfg.mixed_precision!r}); the weights are no longer finite, so the run stopped "
                "and saved nothing more. Lower lr, keep grad_clip on, or look for NaN or infinite values in the "
                "batches")


def _trainable_state(module: nn.Module, trainable: set[int]) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if id(p) in trainable}


def _decides(cfg: TrainConfig, objective: nn.Module, named: list[tuple[str, nn.Parameter]]) -> dict:
    """What decides a training run's numbers: the config (but how often it logs and checkpoints), the
    objective's type, and the names and shapes of what it trains."""
    fields = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
              if k not in EXECUTION_FIELDS}
    return {**fields, "objective": type(objective).__qualname__,
            "trainable": [[n, list(p.shape)] for n, p in named]}


def _save(path: Path, acc: Accelerator, objective: nn.Module, opt, sched, result: TrainResult,
          trainable: set[int], decides: dict) -> None:
    acc.wait_for_everyone()
    if not acc.is_main_process:
        return
    save_atomic({
        "params": _trainable_state(objective, trainable),
        "buffers": {n: b.detach().cpu().clone() for n, b in objective.named_buffers()},
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": _rng_state(),
        "result": asdict(result), "config": decides,
    }, path)


def _resume(path: Path, objective: nn.Module, opt, sched, result: TrainResult, trainable: set[int],
            decides: dict) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, foreign, or holding objects only a pickle could build: stop
        why = ("it holds objects other than tensors and plain values, which a safe load (weights_only=True) "
               "refuses to build" if refused_objects(e) else load_error(e))
        raise ValueError(f"checkpoint {path} is corrupt or not a workbench checkpoint ({why}); nothing was "
                         "loaded and the file was left as it is: move it away to start afresh") from None
    if not isinstance(state, dict) or not {"params", "optimizer", "scheduler", "rng", "result"} <= set(state):
        kind = f"a dict with keys {', '.join(map(str, state))}" if isinstance(state, dict) else \
            f"a {type(state).__name__}"
        raise ValueError(f"checkpoint {path} is not a workbench checkpoint (it holds {kind}); accepted: a file "
                         "workbench.engine.train wrote; nothing was loaded: move it away to start afresh")
    saved_cfg = state.get("config")
    if saved_cfg != decides:
        if saved_cfg is None:
            raise ValueError(f"checkpoint {path} records no training config (written by an older workbench); "
                             "accepted: a checkpoint that records its config; move it away to start afresh")
        differ = sorted(k for k in set(saved_cfg) | set(decides) if saved_cfg.get(k) != decides.get(k))
        shown = ", ".join(f"{k}: checkpoint {saved_cfg.get(k)!r}, now {decides.get(k)!r}" for k in differ
                          if k != "trainable") + (" ; trainable parameters differ" if "trainable" in differ else "")
        raise ValueError(f"checkpoint {path} was written by another training config, so resuming would mix two "
                         f"runs; differing: {shown}. Use another checkpoint path, or move this one away")
    params = dict(objective.named_parameters())
    missing = [n for n in state["params"] if n not in params]
    if missing:
        raise ValueError(f"checkpoint {path} does not fit this model: unknown parameters {missing[:3]}")
    buffers = dict(objective.named_buffers())
    with torch.no_grad():
        for n, t in state["params"].items():
            params[n].copy_(t)
        for n, t in state.get("buffers", {}).items():
            if n in buffers:
                buffers[n].copy_(t)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    saved = state["result"]
    result.history, result.seconds = saved["history"], saved["seconds"]
    result.resumed_from = saved["steps"]
    return int(saved["steps"])
