"""What study 03's figures and explorer draw: the kept models' usage over training, code timelines, exemplars."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.world import World, WorldConfig
from workbench.world.events import events

from .. import kit
from .cells import build_model, pair_id
from .config import Config
from .data import Splits, split_indices
from .methods import codebook_config

SHOW = 24  # test sequences the explorer and the timelines can pick from


@dataclass
class KeptModel:
    """One kept cell (first seed): the trained model and, per training checkpoint, the usage tensor over
    the whole test pass (K, M, C + 1) and the codes (SHOW, T) of the first test sequences per modality."""

    method: str
    cell: kit.Cell
    model: Any  # UniCode, final state, eval mode
    steps: list[int]  # checkpoint training steps
    usages: list[torch.Tensor]
    codes: list[dict[str, torch.Tensor]]
    history: dict[str, Any] = field(default_factory=dict)  # steps, losses {term: [...]}, perplexity {m: [...]}

    @property
    def usage(self) -> torch.Tensor:
        """The usage tensor of the final model over the test pass."""
        return self.usages[-1]

    @property
    def codebook(self) -> torch.Tensor:
        return self.model.codebook().detach().cpu()

    @property
    def train_history(self) -> Any:
        """Steps and per-batch perplexity per modality, as the figures take a TrainHistory."""
        from workbench.methods.codebook import TrainHistory

        return TrainHistory(steps=list(self.history.get("steps", [])), losses=dict(self.history.get("losses", {})),
                            perplexity=dict(self.history.get("perplexity", {})))

    def shared_code(self) -> int:
        """A code to show exemplars of: among the first test sequences' final codes, the one used by the
        most modalities, then by the most steps."""
        final = self.codes[-1]
        counts = torch.stack([torch.bincount(c.reshape(-1), minlength=self.model.n_codes) for c in final.values()])
        score = (counts > 0).sum(0) * (counts.sum() + 1) + counts.sum(0)
        return int(score.argmax())

    def summary(self) -> dict:
        from workbench.methods.codebook import dead_codes, perplexity, shared_fraction

        series = []
        for s, u in zip(self.steps, self.usages):
            sh = shared_fraction(u)
            series.append({"step": s, "perplexity": [round(float(p), 3) for p in perplexity(u)],
                           "dead": dead_codes(u), "shared_two": round(sh.two, 4), "shared_all": round(sh.all, 4)})
        return {"cell": self.cell.id, "checkpoints": series}


def kept_model(cell: kit.Cell, cfg: Config, splits: Splits, path: Path) -> KeptModel:
    """Rebuild a kept cell's model from its artefact and evaluate every checkpoint on the test pass."""
    from workbench.methods.codebook import code_usage

    state = kit.load_tensors(path)
    if state is None:
        raise FileNotFoundError(f"the kept model of {cell.id} is missing at {path}; rerun with use_cache=False")
    model = build_model(cell, cfg, codebook_config(cell.method, cell.setting, cfg), splits.train)
    show = splits.test.subset(range(min(SHOW, len(splits.test))))
    steps, usages, codes = [], [], []
    for step in sorted(state["snapshots"]):
        model.load_state_dict(state["snapshots"][step])
        steps.append(int(step))
        usages.append(code_usage(model, splits.test))
        codes.append({m: c.cpu() for m, c in model.codes(show).items()})
    model.load_state_dict(state["state"])
    model.eval()
    return KeptModel(cell.method, cell, model, steps, usages, codes,
                     {k: state[k] for k in ("steps", "losses", "perplexity", "grad_norms", "grad_norm_steps")
                      if k in state})


def exemplars(cfg: Config, n: int = SHOW) -> dict[str, Any]:
    """The raw inputs of the first `n` test sequences, redrawn from the world (deterministic per index):
    video frames (n, T, 3, H, W), sound (n, T, L) and captions (n lists of T strings)."""
    world = World(WorldConfig(seed=cfg.world_seed))
    idx = split_indices(cfg, "test")
    b = events(world, cfg.split, range(idx.start, idx.start + min(n, len(idx))), cfg.event_config())
    out = {"video": b.frames, "audio": b.audio, "text": b.captions}
    return {m: out[m] for m in cfg.modalities}


def transfer_table(table: list[dict], method: str, cfg: Config, metric: str = "seq") -> list[dict]:
    """The direction matrix of `method` at cfg.codes: one row per source modality, one column per target (%)."""
    row = next((r for r in table if r["method"] == method and r["codes"] == cfg.codes), None)
    if row is None:
        return []
    out = []
    for a in cfg.modalities:
        line = {"train on": a}
        for b in cfg.modalities:
            v = row.get(f"{metric}_{pair_id(a, b)}")
            line[f"test on {b}"] = None if v is None else round(100 * v, 1)
        out.append(line)
    return out
