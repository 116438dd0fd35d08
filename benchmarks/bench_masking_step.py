"""Cost of one masked-distillation training step, side by side with a plain fine-tuning step.

    .venv/bin/python benchmarks/bench_masking_step.py [--batch 64] [--repeats 6] [--threads N]

Same model, same batch, same optimiser; the variants run round-robin (so a busy machine slows
them all alike) and the table reports the median seconds per step and the ratio to plain FT:

  ft                      CE on clean images (forward + backward + AdamW step)
  mask_fd[student,<cam>]  workbench's step: the clean forward doubles as the CAM forward, the CAM
                          gradient stops at the activations it reads, teacher under no_grad
  mask_fd[cached]         teacher CAMs looked up by image index; clean + masked in one student pass
  ...,f=0.5               distill_fraction=0.5: half of each batch distilled (not the paper's recipe)
  paper_4pass[<cam>]      the paper code's order, for reference: a separate CAM forward+backward,
                          then student(masked), teacher(masked), student(clean)

Writes benchmarks/results/bench_masking_step.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.data import WorldSplits
from workbench.engine import Loss
from workbench.methods.cam import apply_fill, compute_cam, make_mask
from workbench.methods.robust_ft import (
    CrossEntropyObjective,
    MaskDistillObjective,
    MaskSpec,
    TeacherCams,
    frozen_copy,
    set_trainable,
    zero_shot_classifier,
)
from workbench.methods.robust_ft.objectives import TeacherMixin

OUT = Path(__file__).resolve().parent / "results" / "bench_masking_step.json"


class PaperFourPass(TeacherMixin):
    """The paper code's step, pass by pass (reference only): CAM fwd+bwd, then three more passes."""

    def __init__(self, student, teacher, spec: MaskSpec, w: float = 30.0):
        super().__init__()
        self.student, self.teacher, self.spec, self.w = student, teacher, spec, w

    def forward(self, images, labels, index=None, step=0):
        gen = torch.Generator().manual_seed(step)
        cam = compute_cam(self.student, images, labels, self.spec.cam_method)  # pass 1: fwd + bwd
        mask = make_mask(self.spec.kind, cam, self.spec.threshold)
        masked = apply_fill(images, mask, self.spec.fill, self.student.model.patch_size, generator=gen)
        f_masked = self.student.features(masked)  # pass 2
        with torch.no_grad():
            target = self.teacher.features(masked)  # pass 3
        logits = self.student(images)  # pass 4
        return Loss(F.cross_entropy(logits, labels) + self.w * F.mse_loss(f_masked, target))


def load(name: str):
    from workbench.models import build_tiny, load_model

    try:
        return load_model(name), name
    except (FileNotFoundError, ValueError) as e:
        if name != "tiny-world-clip":
            raise
        print(f"({e}; timing the same architecture with random weights)")
        torch.manual_seed(0)
        return build_tiny(), f"{name} (random init)"


def variants(zs, data, batch, cams: tuple[str, ...], fractions: tuple[float, ...] = ()) -> dict:
    """name -> (objective, trainable parameters); every student starts from the same weights."""
    import copy

    out = {}

    def student():
        s = copy.deepcopy(zs)
        set_trainable(s, ["vision", "head"])
        return s

    teacher = frozen_copy(zs)
    s = student()
    out["ft"] = CrossEntropyObjective(s)
    for cam in cams:
        spec = MaskSpec(cam_method=cam)
        out[f"mask_fd[student,{cam}]"] = MaskDistillObjective(student(), teacher, spec=spec)
    table = TeacherCams.empty(data.train_size, zs.model.grid_size, cams[0])
    table.cams[batch["index"]] = compute_cam(teacher, batch["images"], batch["labels"], cams[0])
    table.done[batch["index"]] = True
    out["mask_fd[cached]"] = MaskDistillObjective(student(), teacher, spec=MaskSpec(cam_method=cams[0]),
                                                  cam_source="cached", teacher_cams=table)
    for frac in fractions:
        out[f"mask_fd[student,{cams[0]},f={frac:g}]"] = MaskDistillObjective(
            student(), teacher, spec=MaskSpec(cam_method=cams[0]), distill_fraction=frac)
        out[f"mask_fd[cached,f={frac:g}]"] = MaskDistillObjective(
            student(), teacher, spec=MaskSpec(cam_method=cams[0]), cam_source="cached", teacher_cams=table,
            distill_fraction=frac)
    for cam in cams:
        out[f"paper_4pass[{cam}]"] = PaperFourPass(student(), teacher, MaskSpec(cam_method=cam))
    return out


def step_seconds(objective, opt, params, batch, step: int) -> float:
    t0 = time.perf_counter()
    loss = objective(**batch, step=step)
    (loss.loss if isinstance(loss, Loss) else loss).backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-world-clip")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--cams", default="rollout,gradcam")
    ap.add_argument("--fractions", default="0.5", help="distill_fraction values below 1 to time too")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model, model_name = load(args.model)
    data = WorldSplits(n_train=args.batch, batch_size=args.batch, image_size=model.image_size)
    zs = zero_shot_classifier(model, data.classnames, data.templates)
    batch = data.batches(0)
    fractions = tuple(float(f) for f in args.fractions.split(",") if f)
    objs = variants(zs, data, batch, tuple(args.cams.split(",")), fractions)
    opts = {}
    for name, obj in objs.items():
        obj.train()
        params = [p for p in obj.parameters() if p.requires_grad]
        opts[name] = (torch.optim.AdamW(params, lr=1e-5), params)
    times: dict[str, list[float]] = {n: [] for n in objs}
    for r in range(args.warmup + args.repeats):
        for name, obj in objs.items():  # round-robin: load on the machine hits every variant alike
            t = step_seconds(obj, *opts[name], batch, r)
            if r >= args.warmup:
                times[name].append(t)
    base = statistics.median(times["ft"])
    rows = [{"variant": n, "seconds_per_step": statistics.median(t), "ratio_to_ft": statistics.median(t) / base,
             "min_s": min(t), "max_s": max(t)} for n, t in times.items()]
    print(f"\n{model_name}, batch {args.batch}, {args.repeats} steps each, torch threads {torch.get_num_threads()}")
    print(f"{'variant':34s} {'s/step':>8s} {'x FT':>6s}")
    for row in rows:
        print(f"{row['variant']:34s} {row['seconds_per_step']:8.3f} {row['ratio_to_ft']:6.2f}")
    result = {"model": model_name, "batch": args.batch, "repeats": args.repeats, "threads": torch.get_num_threads(),
              "machine": platform.platform(), "rows": rows, "target": "mask_fd step <= 2x ft"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
