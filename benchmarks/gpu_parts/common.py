"""What every part of the GPU benchmark shares: presets, the device and its peak, timing, FLOPs, syncs."""
from __future__ import annotations

import math
import platform
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import torch


@dataclass(frozen=True)
class Preset:
    """How big the benchmark runs. `batch=None` searches `batch_candidates` for the one that fills the device."""

    name: str
    model: str  # "ViT-B-32" (open_clip, random init), "tiny-world-clip" or "micro-clip" (random init)
    batch: int | None
    batch_candidates: tuple[int, ...]
    unique_images: int  # world scenes rendered; the batch repeats them (the architecture decides the cost)
    repeats: int  # timed blocks per variant, interleaved
    per_block: int  # calls per timed block (one sync before, one after)
    warmup: int  # untimed calls per variant first (compilation, allocator, cuDNN/cuBLAS heuristics)
    compile: bool | str  # also time torch.compile'd steps (True: inductor; a str: that backend), the faster
    # is the headline
    cam_batch: int
    adapter_rank: int  # R of mode approximation; LoRA's rank is matched to its parameter count
    world_batch: int
    world_model: str  # the "tiny model" whose step a world batch is compared with
    codebook_items: tuple[int, int]  # (sequences, steps) per modality
    sync_steps: int  # steps profiled for host-device syncs (CUDA)
    threads: int | None = None  # torch CPU threads (None: torch's choice); 1 on a shared CPU, where
    # OpenMP workers waiting on each other's time slices make a small step many times slower


PRESETS: dict[str, Preset] = {
    "gpu": Preset("gpu", "ViT-B-32", None, (128, 256, 512, 1024), 256, repeats=5, per_block=5, warmup=3,
                  compile=True, cam_batch=256, adapter_rank=64, world_batch=60,
                  world_model="tiny-world-clip", codebook_items=(256, 10),
                  sync_steps=3),
    "cpu-small": Preset("cpu-small", "micro-clip", 4, (4,), 4, repeats=2, per_block=1, warmup=1,
                        compile=False, cam_batch=4, adapter_rank=32, world_batch=10,
                        world_model="micro-clip", codebook_items=(8, 4),
                        sync_steps=1, threads=1),
}
PRESET_NAMES = ("auto", *PRESETS)
# cpu-small's model: an open_clip CLIP of the tiny-world-clip kind, small enough that the whole command
# takes seconds of CPU (it checks the command end to end; its numbers say nothing about a GPU)
MICRO_MODEL_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32, "mlp_ratio": 2.0},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from NVIDIA's datasheets, matched in order
# against torch.cuda.get_device_name() (so "H100 PCIe" is tried before "H100", "L40S" before "L4").
# None: the name is known but its peak is not listed here (pass --peak-tflops).
BF16_DENSE_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("H200 NVL", 835.0), ("H200", 989.0),  # H200 SXM
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0),  # H100 SXM5 ("H100 80GB HBM3")
    ("A100", 312.0), ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0),
    ("A10G", None), ("A10", 125.0), ("A6000", 155.0),
)


def resolve_preset(name: str) -> Preset:
    """The preset called `name`; "auto" is "gpu" when CUDA is available, else "cpu-small"."""
    if name == "auto":
        return PRESETS["gpu" if torch.cuda.is_available() else "cpu-small"]
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; accepted: {', '.join(PRESET_NAMES)}")
    return PRESETS[name]


class DeviceInfo(NamedTuple):
    device: torch.device
    name: str  # torch.cuda.get_device_name, or the CPU's description
    slug: str  # for the results file name: gpu_<slug>.json
    count: int  # devices of this kind visible
    memory_gib: float | None
    peak_bf16_tflops: float | None
    peak_source: str


def device_info(peak_override: float | None = None) -> DeviceInfo:
    if torch.cuda.is_available():
        dev = torch.device("cuda", torch.cuda.current_device())
        name = torch.cuda.get_device_name(dev)
        mem = torch.cuda.get_device_properties(dev).total_memory / 2**30
        count = torch.cuda.device_count()
        peak, source = lookup_peak(name)
    else:
        dev, name, mem, count = torch.device("cpu"), f"cpu ({platform.processor() or platform.machine()})", None, 1
        peak, source = None, "CPU: no tensor-core peak, MFU not reported"
    if peak_override is not None:
        peak, source = float(peak_override), "--peak-tflops"
    slug = "cpu" if dev.type == "cpu" else re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return DeviceInfo(dev, name, slug, count, mem, peak, source)


def lookup_peak(name: str) -> tuple[float | None, str]:
    for key, peak in BF16_DENSE_TFLOPS:
        if key.lower() in name.lower():
            if peak is None:
                return None, f"{name!r}: peak not listed in BF16_DENSE_TFLOPS (pass --peak-tflops)"
            return peak, f"BF16_DENSE_TFLOPS[{key!r}] (dense bf16, datasheet)"
    return None, f"{name!r} is not in BF16_DENSE_TFLOPS (pass --peak-tflops)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timing(NamedTuple):
    seconds: float  # median seconds per call over the timed blocks
    min_s: float
    max_s: float
    blocks: int
    per_block: int


def time_interleaved(fns: dict[str, Callable[[], Any]], preset: Preset, device: torch.device) -> dict[str, Timing]:
    """Median seconds per call of each function. Every round runs every function once (a block of
    `per_block` calls between two syncs), so a busy machine slows them alike; syncs only at block edges."""
    for _ in range(preset.warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(preset.repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(preset.per_block):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - t0) / preset.per_block)
    return {k: Timing(statistics.median(v), min(v), max(v), len(v), preset.per_block) for k, v in times.items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call as torch.utils.flop_counter counts them (matmuls, convolutions, attention;
    forward and backward), run eagerly."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def mfu(flops: int, seconds: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the device's dense bf16 peak (None without a peak)."""
    if peak_tflops is None or seconds <= 0:
        return None
    return flops / seconds / (peak_tflops * 1e12)


SYNC_EVENTS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "aten::_local_scalar_dense")


def host_syncs(fn: Callable[[], Any], steps: int, device: torch.device) -> dict:
    """Profile `steps` calls and count the events that make the host wait for the device.

    `aten::_local_scalar_dense` is a tensor read back as a Python number (`.item()`, `float(t)`, a
    branch on a tensor); the cuda*Synchronize calls are explicit waits. Zero means the loop only queues work.
    """
    if device.type != "cuda":
        return {"status": "not applicable", "why": "CPU run: there is no host-device boundary to wait on"}
    from torch.profiler import ProfilerActivity, profile

    fn()  # allocations and lazy initialisation outside the profile
    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
    counts = {e.key: e.count for e in prof.key_averages() if e.key in SYNC_EVENTS}
    total = sum(counts.values())
    return {"status": "checked", "steps": steps, "events": counts, "syncs_per_step": total / steps,
            "sync_free": total == 0}


def finite_positive(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0
