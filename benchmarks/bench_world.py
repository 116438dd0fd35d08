"""Is the world cheap next to training? A world batch vs one contrastive step, side by side.

    .venv/bin/python benchmarks/bench_world.py [--repeats 20] [--batch-size N] [--threads N]

Times, in one process and interleaved (so both see the same machine load):

* world batch: `world.batch("pretrain", N fresh indices)` (N: the recipe's batch size) -- images, masks, captions --
  plus `model.tokenize(captions)`, i.e. everything a training step needs from the data side;
* train step: one contrastive step of tiny-world-clip on such a batch: forward, backward,
  AdamW step (the architecture's cost; the weights do not matter, so a random init is used).

Prints medians and the ratio world / step (target: under 10%), and writes
benchmarks/results/bench_world.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from workbench.methods.contrastive import ContrastiveObjective
from workbench.models import build_tiny
from workbench.pretrain import PretrainConfig
from workbench.studies.kit import write_json_atomic
from workbench.world import World, WorldConfig

TARGET = 0.10
RESULTS = Path(__file__).resolve().parent / "results" / "bench_world.json"


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(repeats: int = 20, warmup: int = 3, batch_size: int = PretrainConfig.batch_size, seed: int = 0) -> dict:
    """Median seconds of each side over `repeats` interleaved rounds after `warmup` rounds."""
    torch.manual_seed(seed)
    world = World(WorldConfig(seed=0))
    model = build_tiny().train()
    objective = ContrastiveObjective(model)
    opt = torch.optim.AdamW(objective.parameters(), lr=1e-4, weight_decay=0.1)
    first = world.batch("pretrain", range(batch_size))
    fixed = {"images": first.images, "tokens": model.tokenize(first.captions)}

    def world_side(r: int) -> tuple[float, float]:
        idx = range(r * batch_size, (r + 1) * batch_size)  # fresh indices: nothing is reused
        t0 = time.perf_counter()
        b = world.batch("pretrain", idx)
        t1 = time.perf_counter()
        model.tokenize(b.captions)
        return t1 - t0, time.perf_counter() - t1

    def step() -> None:
        out = objective(**fixed)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    scene, tok, train = [], [], []
    for r in range(warmup + repeats):
        s, t = world_side(1000 + r)
        dt = _timed(step)
        if r >= warmup:
            scene.append(s)
            tok.append(t)
            train.append(dt)
    total = [a + b for a, b in zip(scene, tok)]
    med = {k: statistics.median(v) for k, v in
           {"world_batch": total, "scene": scene, "tokenize": tok, "train_step": train}.items()}
    return {
        "median_seconds": med,
        "iqr_seconds": {k: _iqr(v) for k, v in {"world_batch": total, "train_step": train}.items()},
        "ratio_world_over_step": med["world_batch"] / med["train_step"],
        "target_ratio": TARGET,
        "repeats": repeats, "warmup": warmup, "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__, "python": platform.python_version(), "device": "cpu",
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _iqr(v: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(v, n=4)
    return q[0], q[2]


def report(res: dict) -> str:
    m = res["median_seconds"]
    lines = [f"batch {res['batch_size']}, {res['repeats']} repeats after {res['warmup']} warm-up, "
             f"{res['torch_threads']} torch threads, load average {res['load_average']}",
             f"{'what':<34}{'median ms':>12}",
             f"{'world batch (scene + tokenize)':<34}{1000 * m['world_batch']:>12.1f}",
             f"{'  scene: images, masks, captions':<34}{1000 * m['scene']:>12.1f}",
             f"{'  tokenize captions':<34}{1000 * m['tokenize']:>12.1f}",
             f"{'train step (fwd + bwd + AdamW)':<34}{1000 * m['train_step']:>12.1f}",
             f"ratio world / step = {100 * res['ratio_world_over_step']:.1f}% "
             f"(target < {100 * res['target_ratio']:.0f}%: "
             f"{'met' if res['ratio_world_over_step'] < res['target_ratio'] else 'NOT met'})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=PretrainConfig.batch_size,
                   help="default: the pretraining recipe's batch size")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.repeats < 2 or args.warmup < 0 or args.batch_size < 1:
        p.error(f"--repeats {args.repeats} must be >= 2, --warmup >= 0, --batch-size >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    res = measure(args.repeats, args.warmup, args.batch_size)
    print(report(res))
    print(f"-> {write_json_atomic(args.out, res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
