"""Mode-approximation steps against peft LoRA on the same layers at matched parameters; merged inference."""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from accelerate import Accelerator

from workbench.engine import trusted_inputs
from workbench.methods.baselines import apply_lora, lora_rank_for_budget
from workbench.methods.contrastive import ContrastiveObjective
from workbench.methods.mode_approx import ModeApproxConfig, inject_mode_approx, merge
from workbench.models import ClipBackend
from workbench.world import World, WorldConfig

from .common import DeviceInfo, Preset, host_syncs, time_interleaved
from .steps import EngineStep

STEP_TARGET = 1.05  # mode approx step / LoRA step, same layers, matched parameters
MERGED_TARGET = 1.05  # merged inference / base inference


def contrastive_batch(model: ClipBackend, preset: Preset, batch: int, device: torch.device) -> dict:
    """World images (resized to the model) and their captions' tokens, repeated to `batch`, on `device`."""
    n = min(preset.unique_images, batch)
    b = World(WorldConfig(seed=0)).batch("novel_train", range(n))
    reps = math.ceil(batch / n)
    images = model.resize(b.images.to(device)).repeat(reps, 1, 1, 1)[:batch].contiguous()
    tokens = model.tokenize(b.captions).to(device).repeat(reps, 1)[:batch]
    model.check_images(images)
    return {"images": images, "tokens": tokens}


def _nonzero_updates(model: ClipBackend) -> None:
    with torch.no_grad():  # V starts at zero; non-zero so the update is really computed and merged
        for n, p in model.named_parameters():
            if ".V." in n:
                p.normal_(0, 0.02)


def variants(base: ClipBackend, rank: int) -> dict:
    """Copies of `base` (CPU): MA on attention only + LoRA matched to it (the same layers: LoRA's sites),
    MA on attention + MLP (the default) + LoRA matched to it, and the default merged."""
    out: dict = {}
    for label, targets in (("attn", ("attn",)), ("attn+mlp", None)):
        ma = copy.deepcopy(base)
        cfg = ModeApproxConfig(rank=rank) if targets is None else ModeApproxConfig(rank=rank, targets=targets)
        rep = inject_mode_approx(ma, cfg)
        _nonzero_updates(ma)
        match = lora_rank_for_budget(base, rep.trainable_params)
        lora = copy.deepcopy(base)
        lrep = apply_lora(lora, r=match.rank)
        out[label] = {"mode_approx": ma, "lora": lora, "mode_approx_params": rep.trainable_params,
                      "lora_rank": match.rank, "lora_params": lrep.trainable}
    merged = copy.deepcopy(out["attn+mlp"]["mode_approx"])
    merge(merged)
    out["merged"] = merged
    return out


def _infer(acc: Accelerator, model: ClipBackend, batch: dict) -> Callable[[], None]:
    model.eval()

    def run() -> None:
        with torch.no_grad(), trusted_inputs(), acc.autocast():
            model.encode_image(batch["images"])
            model.encode_text(batch["tokens"])

    return run


def measure_adapter(acc: Accelerator, preset: Preset, info: DeviceInfo, base: ClipBackend, batch_size: int) -> dict:
    v = variants(base, preset.adapter_rank)
    dev = info.device
    batch = contrastive_batch(base.to(dev), preset, batch_size, dev)
    steps, rows = {}, {}
    for label in ("attn", "attn+mlp"):
        for kind in ("mode_approx", "lora"):
            steps[f"{kind}[{label}]"] = EngineStep(acc, ContrastiveObjective(v[label][kind].to(dev)), lr=1e-4)
    t = time_interleaved({k: s.bound(batch) for k, s in steps.items()}, preset, dev)
    for label in ("attn", "attn+mlp"):
        ma, lo = t[f"mode_approx[{label}]"].seconds, t[f"lora[{label}]"].seconds
        rows[label] = {"mode_approx_params": v[label]["mode_approx_params"], "lora_rank": v[label]["lora_rank"],
                       "lora_params": v[label]["lora_params"],
                       "lora_over_mode_approx_params": v[label]["lora_params"] / v[label]["mode_approx_params"],
                       "mode_approx_seconds_per_step": ma,
                       "lora_seconds_per_step": lo, "ratio_mode_approx_over_lora": ma / lo}
    infer = time_interleaved({"base": _infer(acc, base, batch), "merged": _infer(acc, v["merged"].to(dev), batch),
                              "unmerged": _infer(acc, v["attn+mlp"]["mode_approx"], batch)}, preset, dev)
    return {
        "model": f"{preset.model} (random init)", "batch": batch_size, "rank": preset.adapter_rank,
        "objective": "contrastive (both towers' adapters train)", "same_layers": "attn: every attention module "
        "of both towers, LoRA's default sites; attn+mlp: mode approximation's default, LoRA still on attention",
        "train": rows, "step_target": STEP_TARGET,
        "inference_seconds": {k: x.seconds for k, x in infer.items()},
        "ratio_merged_over_base": infer["merged"].seconds / infer["base"].seconds,
        "ratio_unmerged_over_base": infer["unmerged"].seconds / infer["base"].seconds,
        "merged_target": MERGED_TARGET,
        "host_syncs": host_syncs(steps["mode_approx[attn]"].bound(batch), preset.sync_steps, dev),
    }
