"""What do the modular model's options cost? Temporal modules on a clip forward, token-level routing.

    .venv/bin/python benchmarks/bench_modular.py [--clips 8] [--frames 8] [--repeats 10] [--threads 2]

In one process, interleaved (every round runs every variant once, so a busy machine slows them
alike), medians over `--repeats` rounds after `--warmup`, no gradients:

* temporal modules: a batch of clips through the vision encoder with its local temporal modules
  (two per block, their last projection made non-zero so the update is really computed) vs the
  same encoder without them (the frame-mean encoder); also the whole video-retrieval path (vision
  -> temporal -> universal -> text, contrastive head) vs the same path without "temporal".
  Target: the encoder's time ratio with / without within 1.05x of its FLOP ratio (torch.utils.flop_counter),
  the floor a time ratio can reach when every FLOP costs the same.
* token-level routing (mPLUG-Owl2's MultiwayNetwork) vs path-level selection with the same module
  count (two copies, text and vision, of a universal block's LayerNorm + MLP): token-level takes the
  mixed [text | vision] sequence with one modality id per token, gathers each copy's tokens, runs
  them and scatters them back; path-level runs each modality's tokens through its copy as one
  sequence. Target: token / path <= 1.1, at 8 and at 64 sequences (at 8 a call takes about 2 ms and
  the fixed cost of the gather and scatter shows). Also the whole model's video-retrieval forward with
  routing="token" vs routing="path" (each token still goes through one LayerNorm/MLP, so the compute is
  the same; the token model holds the copies).

tiny-world-clip's architecture decides the cost, not its weights: a random-init tiny-world-clip
(`build_tiny`) is used. Writes benchmarks/results/bench_modular.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from workbench.methods.modular import ModularConfig, ModularModel, Multiway, count_flops, module_flops
from workbench.models import build_tiny
from workbench.studies.kit import write_json_atomic
from workbench.world import World, WorldConfig

ROUTE_ITEMS = (8, 64)  # sequences per routing comparison
TEMPORAL_TARGET = 1.05  # (clip forward with temporal modules / without) over its FLOP ratio (the compute floor)
ROUTING_TARGET = 1.10  # token-level routing / path-level selection, same module count
RESULTS = Path(__file__).resolve().parent / "results" / "bench_modular.json"


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: this process's CPU time, all its threads


def _medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int, clock: str) -> dict[str, float]:
    tick = CLOCKS[clock]
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = tick()
            fn()
            if r >= warmup:
                times[name].append(tick() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _model(routing: str = "path") -> ModularModel:
    torch.manual_seed(0)
    model = ModularModel.from_backend(build_tiny(), ModularConfig(shared_layers=2, routing=routing)).eval()
    with torch.no_grad():  # non-zero residual projections: the temporal and universal updates are computed
        for pair in model.vision.temporal:
            for m in pair:
                m.up.weight.normal_(0, 0.02)
        model.universal.back.weight.normal_(0, 0.02)
    return model


def measure_temporal(model: ModularModel, batch: dict, repeats: int, warmup: int, clock: str) -> dict:
    clips = batch["clips"]
    fns = {
        "vision_with_temporal": lambda: model.vision.tokens(clips, temporal=True),
        "vision_without_temporal": lambda: model.vision.tokens(clips, temporal=False),
        "path_with_temporal": lambda: model.run("video_retrieval", batch),
        "path_without_temporal": lambda: model.run("video_retrieval", batch, ("vision", "universal", "text")),
    }
    with torch.no_grad():
        t = _medians(fns, repeats, warmup, clock)
    flops = {"path_with_temporal": module_flops(model, "video_retrieval", None, batch),
             "path_without_temporal": module_flops(model, "video_retrieval", ("vision", "universal", "text"), batch),
             "vision_with_temporal": count_flops(lambda: model.vision.tokens(clips, temporal=True)),
             "vision_without_temporal": count_flops(lambda: model.vision.tokens(clips, temporal=False))}
    return {"median_seconds": t, "flops": flops,
            "ratio_vision": t["vision_with_temporal"] / t["vision_without_temporal"],
            "ratio_vision_flops": flops["vision_with_temporal"] / flops["vision_without_temporal"],
            "ratio_path": t["path_with_temporal"] / t["path_without_temporal"],
            "ratio_path_flops": flops["path_with_temporal"] / flops["path_without_temporal"],
            "ratio_over_floor": (t["vision_with_temporal"] / t["vision_without_temporal"])
            / (flops["vision_with_temporal"] / flops["vision_without_temporal"])}


def measure_routing(model: ModularModel, token_model: ModularModel, batch: dict, repeats: int, warmup: int,
                    clock: str, items: tuple[int, ...] = ROUTE_ITEMS) -> dict:
    block = model.universal.blocks[1]
    width = model.text.width
    part = torch.nn.Sequential(block.ln_2, block.mlp)  # a LayerNorm + MLP, as routed in the universal layers
    mw = Multiway.of(part)
    gen = torch.Generator().manual_seed(0)
    n_text, n_vision = model.text.context_length, (model.vision.image_size // 8) ** 2 + 1 + model.config.latents
    fns = {"model_token_routing": lambda: token_model.run("video_retrieval", batch),
           "model_path_routing": lambda: model.run("video_retrieval", batch)}
    for b in items:  # the module alone on b sequences of [text | vision]: ~2 ms at 8, where per-call overhead shows
        text, vision = torch.randn(b, n_text, width, generator=gen), torch.randn(b, n_vision, width, generator=gen)
        mixed = torch.cat([text, vision], dim=1)
        ids = torch.cat([torch.zeros(b, n_text, dtype=torch.long), torch.ones(b, n_vision, dtype=torch.long)], dim=1)
        fns[f"token_level_{b}"] = lambda mixed=mixed, ids=ids: mw(mixed, ids)
        fns[f"path_level_{b}"] = lambda text=text, vision=vision: (mw.select("text")(text), mw.select("vision")(vision))
    with torch.no_grad():
        t = _medians(fns, repeats * 3, warmup, clock)  # three times the repeats: the module calls are short
    return {"median_seconds": t, "tokens": {"text": n_text, "vision": n_vision}, "items": list(items),
            "ratio_module": {b: t[f"token_level_{b}"] / t[f"path_level_{b}"] for b in items},
            "ratio_model": t["model_token_routing"] / t["model_path_routing"]}


def report(res: dict) -> str:
    tm, rt = res["temporal"], res["routing"]
    ok = {True: "ok", False: "OVER TARGET"}
    return "\n".join([
        f"bench_modular: {res['clips']} clips x {res['frames']} frames, {res['torch_threads']} torch threads, "
        f"{res['clock']} clock, "
        f"load average {res['load_average']}",
        f"temporal modules, vision encoder: {tm['ratio_vision']:.3f}x "
        f"({tm['median_seconds']['vision_with_temporal'] * 1e3:.1f} vs "
        f"{tm['median_seconds']['vision_without_temporal'] * 1e3:.1f} ms)",
        f"  its FLOPs: {tm['ratio_vision_flops']:.3f}x (the floor for equal cost per FLOP); time over floor "
        f"{tm['ratio_over_floor']:.3f}x (target <= {TEMPORAL_TARGET}: {ok[tm['ratio_over_floor'] <= TEMPORAL_TARGET]})",
        f"temporal modules, video-retrieval path: {tm['ratio_path']:.3f}x in time, "
        f"{tm['ratio_path_flops']:.3f}x in FLOPs",
        *(f"token-level routing / path-level selection (same copies), {b} sequences: {r:.3f}x "
          f"({rt['median_seconds'][f'token_level_{b}'] * 1e3:.2f} vs "
          f"{rt['median_seconds'][f'path_level_{b}'] * 1e3:.2f} ms; target <= {ROUTING_TARGET}: "
          f"{ok[r <= ROUTING_TARGET]})" for b, r in rt["ratio_module"].items()),
        f"model forward, routing='token' / routing='path': {rt['ratio_model']:.3f}x",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall: elapsed time (a quiet machine); cpu: this process's CPU time (a loaded one, "
                        "best with --threads 1)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or args.clips < 1 or args.frames < 2:
        p.error("--repeats >= 1, --warmup >= 0, --clips >= 1 and --frames >= 2, please")
    if args.threads:
        torch.set_num_threads(args.threads)
    model, token_model = _model("path"), _model("token")
    world = World(WorldConfig(seed=0))
    c = world.clips("novel_train", range(args.clips), frames=args.frames)
    batch = {"clips": c.frames, "text": model.tokenize(list(c.captions))}
    res = {"clips": args.clips, "frames": args.frames, "repeats": args.repeats, "warmup": args.warmup,
           "clock": args.clock,
           "temporal": measure_temporal(model, batch, args.repeats, args.warmup, args.clock),
           "routing": measure_routing(model, token_model, batch, args.repeats, args.warmup, args.clock),
           "targets": {"temporal_with_over_without": TEMPORAL_TARGET, "token_over_path_routing": ROUTING_TARGET},
           "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
           "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "torch": torch.__version__, "python": platform.python_version(), "device": "cpu",
           "written": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(report(res))
    print(f"-> {write_json_atomic(args.out, res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
