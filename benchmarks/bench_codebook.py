"""Cost of Uni-Code's codebook and training step, side by side with the library and a plain VQ-VAE.

    .venv/bin/python benchmarks/bench_codebook.py [--batch 80] [--repeats 20] [--threads N]

Two comparisons, each run round-robin (a busy machine slows every variant alike), medians reported:

  quantizer   forward + EMA update of a 400 x 256 codebook for two modalities, batch x 10 steps each:
              ours[shared_ema]        EMACodebook, MM-EMA + cross commitment + reset (Uni-Code)
              ours[plain]             EMACodebook, MM-EMA, cross commitment and reset off
              vqtorch[plain] x2       vector-quantize-pytorch VectorQuantize, EMA, Euclidean, no extras
                                      (rotation trick, k-means, expiry off), called once per modality
              vqtorch[defaults] x2    the same with its default rotation trick and dead-code expiry 2
              target: ours[shared_ema] <= vqtorch[plain] x2
  step        one training step (forward, backward, Adam) on the paper's shapes (video 7x7x512, audio 128):
              unicode[full]           all losses, CLUB's 5 inner steps per modality included
              vqvae[plain]            the same encoders + plain shared VQ-EMA + decoders, recon + commitment
              target: unicode[full] <= 3x vqvae[plain]

Writes benchmarks/results/bench_codebook.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from workbench.methods.codebook import CodebookConfig, EMACodebook, UniCode

OUT = Path(__file__).resolve().parent / "results" / "bench_codebook.json"
MODS = ("video", "audio")


def quantizers(codes: int, dim: int) -> dict:
    from vector_quantize_pytorch import VectorQuantize

    torch.manual_seed(0)
    plain = dict(dim=dim, codebook_size=codes, decay=0.99, commitment_weight=0.25, kmeans_init=False,
                 use_cosine_sim=False, threshold_ema_dead_code=0, rotation_trick=False)
    defaults = dict(dim=dim, codebook_size=codes, decay=0.99, commitment_weight=0.25, threshold_ema_dead_code=2)
    lib_plain = {m: VectorQuantize(**plain).train() for m in MODS}
    lib_default = {m: VectorQuantize(**defaults).train() for m in MODS}
    ours = EMACodebook(MODS, codes, dim).train()
    ours_plain = EMACodebook(MODS, codes, dim, cross_weight=0.0, cross_commit=False, reset=False).train()
    return {
        "ours[shared_ema]": lambda z: ours(z).commitment,
        "ours[plain]": lambda z: ours_plain(z).commitment,
        "vqtorch[plain] x2": lambda z: sum(lib_plain[m](z[m])[2].sum() for m in MODS),
        "vqtorch[defaults] x2": lambda z: sum(lib_default[m](z[m])[2].sum() for m in MODS),
    }


def steps(batch: int) -> dict:
    shapes = {"video": (7, 7, 512), "audio": (128,)}
    g = torch.Generator().manual_seed(0)
    feats = {m: torch.randn(batch, 10, *s, generator=g) for m, s in shapes.items()}
    out = {}
    for name, cfg in (("unicode[full]", CodebookConfig()),
                      ("vqvae[plain]", CodebookConfig(quantizer="vq_ema", club=False, cpc=False))):
        model = UniCode(cfg, shapes, seed=0).train()
        opt = torch.optim.Adam(model.main_parameters(), lr=4e-4)

        def step(_, model=model, opt=opt):
            loss = model.step(feats).total
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        out[name] = step
    return out


def timed(fns: dict, arg, repeats: int, warmup: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(arg)
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times


def rows(times: dict[str, list[float]], base: str) -> list[dict]:
    ref = statistics.median(times[base])
    return [{"variant": n, "seconds": statistics.median(t), f"ratio_to_{base}": statistics.median(t) / ref,
             "min_s": min(t), "max_s": max(t)} for n, t in times.items()]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=80, help="sequences per batch (10 steps each)")
    ap.add_argument("--codes", type=int, default=400)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--step-repeats", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    z = {m: torch.randn(args.batch, 10, args.dim, generator=g) for m in MODS}
    with torch.no_grad():
        q_rows = rows(timed(quantizers(args.codes, args.dim), z, args.repeats, args.warmup), "vqtorch[plain] x2")
    s_rows = rows(timed(steps(args.batch), None, args.step_repeats, 1), "vqvae[plain]")
    print(f"\nbatch {args.batch} x 10 steps, {args.codes} codes x {args.dim}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    for title, rs, key in (("quantizer (forward + EMA)", q_rows, "ratio_to_vqtorch[plain] x2"),
                           ("training step", s_rows, "ratio_to_vqvae[plain]")):
        print(f"\n{title:28s} {'ms':>9s} {'ratio':>7s}")
        for r in rs:
            print(f"{r['variant']:28s} {1000 * r['seconds']:9.2f} {r[key]:7.2f}")
    q = {r["variant"]: r for r in q_rows}
    s = {r["variant"]: r for r in s_rows}
    result = {
        "batch": args.batch, "codes": args.codes, "dim": args.dim, "repeats": args.repeats,
        "step_repeats": args.step_repeats, "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0],
        "machine": platform.platform(), "quantizer": q_rows, "step": s_rows,
        "ratios": {"ours_over_vqtorch_plain": q["ours[shared_ema]"]["seconds"] / q["vqtorch[plain] x2"]["seconds"],
                   "unicode_over_vqvae": s["unicode[full]"]["seconds"] / s["vqvae[plain]"]["seconds"]},
        "targets": {"ours_over_vqtorch_plain": "<= 1", "unicode_over_vqvae": "<= 3"},
    }
    print(f"\nours / vqtorch: {result['ratios']['ours_over_vqtorch_plain']:.2f} (target <= 1); "
          f"unicode / vqvae: {result['ratios']['unicode_over_vqvae']:.2f} (target <= 3)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
