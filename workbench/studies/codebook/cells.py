"""Study 03's grid (method x codebook size x seed) and one cell's work: train, transfer, retrieve, measure usage."""
from __future__ import annotations

import time
from itertools import product
from pathlib import Path
from typing import Any

import torch

from workbench.data import EventFeatures
from workbench.engine import save_atomic

from .. import kit
from .config import Config
from .data import Splits

KEEP = ("unicode", "plain_vq")  # methods whose first-seed model (and training checkpoints) the figures draw


def pairs(cfg: Config) -> list[tuple[str, str]]:
    """Every (source, target) direction, the same-modality ones (upper bounds) included."""
    return list(product(cfg.modalities, cfg.modalities))


def pair_id(a: str, b: str) -> str:
    return f"{a[0]}{b[0]}"  # "va": head trained on video codes, tested on audio codes


def checkpoint_steps(cfg: Config) -> list[int]:
    n = max(cfg.checkpoints, 1)
    return sorted({round(i * cfg.train_steps / max(n - 1, 1)) for i in range(n)} | {cfg.train_steps})


def build_model(cell: kit.Cell, cfg: Config, ccfg, data: EventFeatures):
    from workbench.methods.codebook import UniCode

    return UniCode(ccfg, data.shapes, seed=cell.seed).to(kit.device(cfg.device))


def run_cell(cell: kit.Cell, cfg: Config, splits: Splits, ccfg, keep: Path | None = None,
             grad_norm_every: int = 0) -> dict[str, Any]:
    """Train one model (`ccfg`: its CodebookConfig), then measure it on held-out sequences: every transfer
    direction (sequence classification and per-step localisation), retrieval through codes, codebook usage.
    `grad_norm_every`: record each loss term's gradient norm on the semantic encoders that often (kept cells)."""
    from workbench.methods.codebook import train_unicode

    model = build_model(cell, cfg, ccfg, splits.train)
    t0 = time.perf_counter()
    hist = train_unicode(model, splits.train, cfg.train_steps, cfg.batch_size, cfg.lr, seed=cell.seed,
                         checkpoints=checkpoint_steps(cfg) if keep is not None else (),
                         grad_norm_every=grad_norm_every)
    seconds = time.perf_counter() - t0
    metrics = evaluate(model, cfg, splits, cell.seed)
    metrics.update(train_seconds=round(seconds, 3), final_loss=hist.losses["total"][-1] if hist.steps else None,
                   n_codes=model.n_codes)
    if keep is not None:
        save_atomic({"state": model.state_dict(), "snapshots": hist.snapshots, "steps": hist.steps,  # never half
                     "losses": hist.losses, "perplexity": hist.perplexity, "grad_norms": hist.grad_norms,
                     "grad_norm_steps": hist.grad_norm_steps}, keep)
    return metrics


def evaluate(model, cfg: Config, splits: Splits, seed: int) -> dict[str, Any]:
    from workbench.methods.codebook import (
        HeadConfig,
        code_retrieval,
        code_usage,
        dead_codes,
        feature_alignment,
        perplexity,
        purity,
        shared_fraction,
        transfer_matrix,
    )

    held = _concat(splits.val, splits.test)  # one head per direction, scored on both parts
    nv = len(splits.val)
    res = transfer_matrix(model, splits.train, held, HeadConfig(steps=cfg.head_steps, lr=cfg.head_lr, seed=seed))
    out: dict[str, Any] = {}
    for (a, b), r in res.items():
        p = pair_id(a, b)
        seq, step = torch.tensor(r.sequence_items, dtype=torch.float), torch.tensor(r.step_items)
        out[f"seq_{p}"], out[f"step_{p}"] = float(seq[nv:].mean()), float(step[nv:].mean())
        out[f"val_seq_{p}"], out[f"val_step_{p}"] = float(seq[:nv].mean()), float(step[:nv].mean())
        out[f"seq_{p}_items"], out[f"step_{p}_items"] = seq[nv:].tolist(), step[nv:].tolist()
    cross = [pair_id(a, b) for a, b in pairs(cfg) if a != b]
    out["seq_cross"] = sum(out[f"seq_{p}"] for p in cross) / len(cross)
    out["step_cross"] = sum(out[f"step_{p}"] for p in cross) / len(cross)
    out["val_seq_cross"] = sum(out[f"val_seq_{p}"] for p in cross) / len(cross)
    for a, b in pairs(cfg):
        if a != b:
            out[f"r1_{pair_id(a, b)}"] = code_retrieval(model, splits.test, a, b).recall_at_1
    usage = code_usage(model, splits.test)
    ppl = perplexity(usage)
    for j, m in enumerate(model.modalities):
        out[f"perplexity_{m}"] = float(ppl[j])
    shared = shared_fraction(usage)
    pur = purity(usage)
    align = feature_alignment(model, splits.test)
    out.update(align_gap=align.centroid_gap, align_spread=align.spread, align_paired=align.paired,
               align_unpaired=align.unpaired)
    out.update(dead=dead_codes(usage), shared_two=shared.two, shared_all=shared.all,
               purity=float(pur[~pur.isnan()].mean()) if (~pur.isnan()).any() else None)
    return out


def _concat(a: EventFeatures, b: EventFeatures) -> EventFeatures:
    cat = lambda x, y: torch.cat([x, y])
    feats = {m: cat(a.features[m], b.features[m]) for m in a.modalities}
    present = {m: cat(a.present[m], b.present[m]) for m in a.modalities}
    return EventFeatures(feats, cat(a.step_labels, b.step_labels), cat(a.labels, b.labels), present, a.classes)
