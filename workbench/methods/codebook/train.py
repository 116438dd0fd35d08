"""train_unicode: the whole training loop (main Adam, CLUB's inner steps inside UniCode.step), with snapshots.

After backward, each part's gradient norm is clipped to cfg.grad_clip (0.5, the authors' --clip_gradient;
they clip each module separately: see UniCode.clip_groups). Optionally, every `grad_norm_every` steps, the
gradient norm each loss term alone puts on the semantic encoders is recorded (diagnostics.loss_grad_norms).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from workbench.checks import check_number

from .diagnostics import loss_grad_norms
from .model import UniCode, features_of
from .quantizer import batch_perplexity


@dataclass
class TrainHistory:
    """Per-step loss terms and batch perplexity per modality; model state at the requested checkpoints."""

    steps: list[int] = field(default_factory=list)
    losses: dict[str, list[float]] = field(default_factory=dict)  # term -> value per step
    perplexity: dict[str, list[float]] = field(default_factory=dict)  # modality -> batch perplexity per step
    snapshots: dict[int, dict[str, Tensor]] = field(default_factory=dict)  # step -> state_dict copy
    grad_norm_steps: list[int] = field(default_factory=list)  # the steps grad_norms were recorded at
    grad_norms: dict[str, list[float]] = field(default_factory=dict)  # term -> semantic-encoder grad norm
    seconds: float = 0.0


def restore(model: UniCode, history: TrainHistory, step: int) -> UniCode:
    """Load the snapshot taken at `step` into model (in place) and return it."""
    if step not in history.snapshots:
        raise ValueError(f"no snapshot at step {step!r}; accepted: a step taken (checkpoints=): "
                         f"{sorted(history.snapshots) or 'none were'}")
    model.load_state_dict(history.snapshots[step])
    return model


def _snapshot(model: UniCode) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_unicode(model: UniCode, data: Any, steps: int, batch_size: int = 80, lr: float = 4e-4, seed: int = 0,
                  checkpoints: Iterable[int] = (), callback: Callable[[int, Any], None] | None = None,
                  grad_norm_every: int = 0) -> TrainHistory:
    """Train on `data` (EventFeatures or dict modality -> (N, T, *shape)) for `steps` batches of sequences.

    Batches are drawn epoch by epoch in a permutation seeded by `seed` (which also seeds dropout and the
    codebook resets). checkpoints: steps (0 = before training, up to `steps`) at which the state is kept.
    callback(step, losses) runs after every step (the step's clipped gradients are still in .grad).
    grad_norm_every: every that many steps (0: never), the gradient norm of each loss term alone on the
    semantic encoders' parameters, taken on the training step itself, goes to history.grad_norms.
    """
    steps = check_number(steps, "steps", integer=True, ge=0)
    batch_size = check_number(batch_size, "batch_size", integer=True, ge=1)
    lr = check_number(lr, "lr", gt=0)
    seed = check_number(seed, "seed", integer=True, ge=0)
    if isinstance(grad_norm_every, bool) or not isinstance(grad_norm_every, int) or grad_norm_every < 0:
        raise ValueError(f"grad_norm_every must be an integer >= 0, got {grad_norm_every!r}")
    if isinstance(checkpoints, (str, bytes)) or not isinstance(checkpoints, Iterable):
        raise TypeError(f"checkpoints={checkpoints!r} is not a sequence; accepted: steps in [0, steps={steps}], "
                        f"e.g. ({checkpoints!r},)")
    checkpoints = [check_number(c, "checkpoints item", integer=True) for c in checkpoints]
    checkpoints = sorted(set(checkpoints))
    bad = [c for c in checkpoints if not 0 <= c <= steps]
    if bad:
        raise ValueError(f"checkpoints must lie in [0, steps={steps}], got {bad}")
    feats = features_of(data)
    missing = [m for m in model.modalities if m not in feats]
    if missing:
        raise ValueError(f"the data lacks {', '.join(map(repr, missing))}, which the model was built for (modalities "
                         f"{', '.join(model.modalities)}); accepted: data with every modality of the model (extra "
                         f"ones are ignored), here it has {', '.join(feats)}")
    n = len(next(iter(feats.values())))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.main_parameters(), lr=lr)
    hist = TrainHistory()
    if 0 in checkpoints:
        hist.snapshots[0] = _snapshot(model)
    model.train()
    t0, order, pos = time.perf_counter(), torch.randperm(n, generator=gen), 0
    for step in range(1, steps + 1):
        if pos + min(batch_size, n) > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos: pos + batch_size]
        pos += batch_size
        losses = model.step({m: x[idx] for m, x in feats.items()})
        total = float(losses.total.detach())  # read every step anyway (_record)
        if not math.isfinite(total):
            raise FloatingPointError(f"Uni-Code training diverged: the loss was {total} at step {step} of {steps} "
                                     f"(lr={lr!r}); the run stopped before updating the weights with it. Lower lr "
                                     "or look for NaN or infinite values in the features")
        if grad_norm_every and step % grad_norm_every == 0:
            hist.grad_norm_steps.append(step)
            for name, value in loss_grad_norms(losses, model.semantic_encoders.parameters()).items():
                hist.grad_norms.setdefault(name, []).append(value)
        opt.zero_grad(set_to_none=True)
        losses.total.backward()
        if model.cfg.grad_clip > 0:
            model.clip_gradients(model.cfg.grad_clip)
        opt.step()
        _record(hist, model, step, losses)
        if step in checkpoints:
            hist.snapshots[step] = _snapshot(model)
        if callback is not None:
            callback(step, losses)
    hist.seconds = time.perf_counter() - t0
    model.eval()
    return hist


def _record(hist: TrainHistory, model: UniCode, step: int, losses) -> None:
    hist.steps.append(step)
    for name, value in losses._asdict().items():
        hist.losses.setdefault(name, []).append(float(value.detach()))
    for m, i in model.last_indices.items():
        hist.perplexity.setdefault(m, []).append(batch_perplexity(i, model.n_codes))
