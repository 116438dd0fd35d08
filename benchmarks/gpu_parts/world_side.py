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
    """Uni-Code's shared EMA codebook (MM-EMA, cross commitment, reset), its plain VQ-EMA, and
    vector-quantize-pytorch's VectorQuantize (the study's `vqtorch` baseline), each a training call
    (forward with its EMA update + commitment backward) on the same features of every modality.
    Skipped, with the reason, while the workbench's codebook or the library is missing."""
    missing = [name for name, mod in (("workbench.methods.codebook", "workbench.methods.codebook"),
                                      ("vector-quantize-pytorch", "vector_quantize_pytorch"))
               if importlib.util.find_spec(mod) is None]
    if missing:
        return {"skipped": True, "why": f"not installed / not in the tree yet: {', '.join(missing)}"}
    from workbench.methods.codebook import MODALITIES, CodebookConfig, build_quantizer

    dev = info.device
    n, t = preset.codebook_items
    cfg = CodebookConfig()
    g = torch.Generator().manual_seed(0)
    z = {m: torch.randn(n, t, cfg.dim, generator=g).to(dev).requires_grad_(True) for m in MODALITIES}
    quantizers = {k: build_quantizer(CodebookConfig(quantizer=k), MODALITIES).to(dev).train()
                  for k in ("shared_ema", "vq_ema", "vqtorch")}

    def call(q):
        def run() -> None:
            out = q(z)
            out.commitment.backward()
            for x in z.values():
                x.grad = None
        return run

    fns = {k: call(q) for k, q in quantizers.items()}
    timing = time_interleaved(fns, preset, dev)
    return {"skipped": False, "modalities": list(MODALITIES), "items": n, "steps": t, "dim": cfg.dim,
            "codes": cfg.codes, "what": "training call: nearest code + EMA update (+ reset for shared_ema) + "
            "commitment backward; fp32, no autocast (EMA statistics)",
            "library": "vector_quantize_pytorch.VectorQuantize (k-means init, cosine sim, dead-code expiry, "
                       "rotation trick), as the study's vqtorch baseline builds it",
            "seconds": {k: v.seconds for k, v in timing.items()},
            "ratio_shared_ema_over_library": timing["shared_ema"].seconds / timing["vqtorch"].seconds,
            "ratio_plain_ema_over_library": timing["vq_ema"].seconds / timing["vqtorch"].seconds,
            "host_syncs": host_syncs(fns["shared_ema"], preset.sync_steps, dev)}
