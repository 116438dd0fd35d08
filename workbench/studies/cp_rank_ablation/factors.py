"""What a trained mode-approx adapter learned (its shared factors and mode vectors), and the
parameter arithmetic at real scale: the pictures' data for notebook 02."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.models import ClipBackend

from .. import kit
from ..kit.cache import load_tensors
from .config import Config

CACHE_VERSION = 1

_ORDER = ("q", "k", "v", "out", "fc1", "fc2")  # mode approx names the fused attention's matrices so


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


def mode_label(name: str, model: ClipBackend) -> tuple[tuple, str]:
    """A mode-vector parameter name (of the backend) -> (sort key, short label like "V0 q" or "T2 fc1")."""
    tower = "V" if model.tower_of(name.removeprefix("model.")) == "vision" else "T"
    block = re.search(r"\.(\d+)\.", name)  # the block index: the first number in the name
    b = int(block.group(1)) if block else -1
    parts = name.split(".")
    i = parts.index("mode_approx_lambda")
    leaf = parts[i + 1] if i + 1 < len(parts) else parts[i - 1]  # MHA: ...lambda.q; linear: c_fc.lambda
    kind = model.matrix_kinds.get(leaf, leaf)
    return (tower != "V", b, _ORDER.index(kind) if kind in _ORDER else 9), f"{tower}{b} {kind}"


def load_factors(path: Path, cell: kit.Cell, model: ClipBackend) -> FactorSnapshot | None:
    """Shared U, V, core and every mode vector of a saved mode-approx adapter (None: not shared)."""
    saved = load_tensors(path)
    if saved is None:
        return None
    state = saved["trained"]
    U = [v for k, v in state.items() if k.startswith("mode_approx_shared.U.")]
    V = [v for k, v in state.items() if k.startswith("mode_approx_shared.V.")]
    if not U:
        return None
    return FactorSnapshot(rank=cell.setting, form="tucker", seed=cell.seed, U=U[0], V=V[0],
                          core=state.get("mode_approx_shared.core"), modes=_modes(state, model),
                          modes_init=_modes(saved["init"], model))


def _modes(state: dict[str, torch.Tensor], model: ClipBackend) -> dict[str, torch.Tensor]:
    """Every mode vector of an adapter state, one per d x d block, labelled and in model order."""
    modes: list[tuple[tuple, str, torch.Tensor]] = []
    for name, lam in state.items():
        if "mode_approx_lambda" not in name:
            continue
        key, label = mode_label(name, model)
        blocks = lam.reshape(-1, lam.shape[-1])  # (n_out * n_in, R)
        for j, vec in enumerate(blocks):
            modes.append(((*key, j), label if len(blocks) == 1 else f"{label}.{j}", vec))
    modes.sort(key=lambda t: t[0])
    return {label: vec for _, label, vec in modes}


def real_scale_rows(cfg: Config) -> list[dict]:
    """Part A's real-scale parameter table (cached on disk: building the models takes a while)."""
    if cfg.real_scale == "off":
        return []
    from workbench.methods.mode_approx import real_scale_table

    if cfg.real_scale == "formula":  # no models built: the paper's BLIP-base formula rows only
        return [_scale_row(r) for r in real_scale_table(cfg.ranks, models={})]
    cache = kit.CellCache("cp_rank_ablation-real_scale", cfg, skip=[f.name for f in dataclasses.fields(cfg)
                                                                   if f.name != "ranks"], version=CACHE_VERSION)
    cell = kit.Cell("real_scale")
    rows = cache.load(cell)
    if rows is None:
        rows = [_scale_row(r) for r in real_scale_table(cfg.ranks)]
        cache.save(cell, rows)
    return rows


def _scale_row(row) -> dict:
    """A ScaleRow as a flat dict, its share of the base model's parameters included."""
    out = dataclasses.asdict(row)
    for name in ("share_pct", "total_pct"):  # properties of the row (percentages of the base model)
        value = getattr(row, name, None)
        if value is not None:
            out[name] = round(float(value), 4)
    return out
