"""A world batch against a tiny-world-clip training step on the device; the codebook comparison."""
from __future__ import annotations

import importlib.util
import itertools

import torch
from accelerate import Accelerator

from workbench.methods.contrastive import ContrastiveObjective
from workbench.world import World, WorldConfig

from .common import DeviceInfo, Preset, host_syncs, time_interleaved
from .finetune import build_model
from .steps import EngineStep

WORLD_TARGET = 0.10  # world batch / tiny step


def measure_world(acc: Accelerator, preset: Preset, info: DeviceInfo) -> dict:
    """The world renders on the CPU (it has no device argument): a batch is render + tokenise + copy to device."""
    dev, n = info.device, preset.world_batch
    world = World(WorldConfig(seed=0))
    torch.manual_seed(0)
    model = build_model(preset.world_model).to(dev)
    first = world.batch("pretrain", range(n))
    fixed = {"images": model.resize(first.images.to(dev)), "tokens": model.tokenize(first.captions).to(dev)}
    model.check_images(fixed["images"])
    step = EngineStep(acc, ContrastiveObjective(model), lr=1e-4)
    counter = itertools.count(1)

    def world_batch() -> None:
        r = next(counter)  # fresh indices every call: nothing is reused
        b = world.batch("pretrain", range(r * n, (r + 1) * n))
        b.images.to(dev, non_blocking=True)
        model.tokenize(b.captions).to(dev, non_blocking=True)

    t = time_interleaved({"world_batch": world_batch, "tiny_step": step.bound(fixed)}, preset, dev)
    return {"batch": n, "tiny_model": f"{preset.world_model} (random init)",
            "world_device": "cpu (World renders with torch on the CPU; batches are copied over)",
            "seconds": {k: v.seconds for k, v in t.items()},
            "ratio_world_over_step": t["world_batch"].seconds / t["tiny_step"].seconds, "target": WORLD_TARGET}


def measure_codebook(acc: Accelerator, preset: Preset, info: DeviceInfo) -> dict:
    """Uni-Code's shared EMA codebook against vector-quantize-pytorch's VectorQuantize: the quantizers
    and the comparison of `benchmarks/bench_codebook.py` (forward + EMA update, no grad; the library
    called once per modality), built on the device and timed here. Skipped, with the reason, while
    the workbench's codebook or the library is missing."""
    missing = [name for name, mod in (("workbench.methods.codebook", "workbench.methods.codebook"),
                                      ("vector-quantize-pytorch", "vector_quantize_pytorch"))
               if importlib.util.find_spec(mod) is None]
    if missing:
        return {"skipped": True, "why": f"not installed / not in the tree yet: {', '.join(missing)}"}
    from bench_codebook import MODS, quantizers  # benchmarks/ is on sys.path when gpu.py runs

    from workbench.methods.codebook import CodebookConfig

    dev, (n, t), cfg = info.device, preset.codebook_items, CodebookConfig()
    g = torch.Generator().manual_seed(1)
    z = {m: torch.randn(n, t, cfg.dim, generator=g).to(dev) for m in MODS}
    with torch.device(dev):  # every codebook and buffer the builders create lands on the device
        fns = quantizers(cfg.codes, cfg.dim)

    def bound(fn):
        def run() -> None:
            with torch.no_grad():
                fn(z)
        return run

    calls = {k: bound(f) for k, f in fns.items()}
    timing = time_interleaved(calls, preset, dev)
    ours, lib = timing["ours[shared_ema]"].seconds, timing["vqtorch[plain] x2"].seconds
    return {"skipped": False, "modalities": list(MODS), "items": n, "steps": t, "dim": cfg.dim, "codes": cfg.codes,
            "what": "bench_codebook.quantizers: forward + EMA update (+ MM-EMA, cross commitment, reset for "
                    "ours[shared_ema]); fp32, no grad; the library once per modality",
            "seconds": {k: v.seconds for k, v in timing.items()},
            "ratio_shared_ema_over_library": ours / lib, "target": 1.0,
            "host_syncs": host_syncs(calls["ours[shared_ema]"], preset.sync_steps, dev)}
