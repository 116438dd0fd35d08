"""ViT fine-tuning steps (images/s, MFU) and the masked-distillation step against plain FT and its floor."""
from __future__ import annotations

import gc
import math
import time
from dataclasses import replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from workbench.data import WorldSplits
from workbench.engine import trusted_inputs
from workbench.methods.cam import compute_cam
from workbench.methods.robust_ft import (
    CrossEntropyObjective,
    MaskDistillObjective,
    MaskSpec,
    TeacherCams,
    frozen_copy,
    set_trainable,
    zero_shot_classifier,
)
from workbench.models import ClipBackend, ImageClassifier, build_tiny, load_model

from .common import MICRO_MODEL_CFG, DeviceInfo, Preset, count_flops, host_syncs, mfu, sync, time_interleaved
from .steps import EngineStep, forward_backward

MASK_FLOOR_TARGET = 1.1
MFU_TARGET = 0.30


class Scenes(NamedTuple):
    images: torch.Tensor  # (n, 3, 64, 64) world pixels in [0, 1], CPU
    labels: torch.Tensor  # (n,) into classnames
    classnames: tuple[str, ...]
    templates: tuple


def build_model(name: str) -> ClipBackend:
    """An architecture with random weights (the architecture decides the cost), on the CPU."""
    torch.manual_seed(0)
    if name == "tiny-world-clip":
        return build_tiny().eval()
    if name == "micro-clip":
        return build_tiny(MICRO_MODEL_CFG).eval()
    return load_model(name, pretrained=None)


def scenes(preset: Preset) -> Scenes:
    data = WorldSplits(n_train=preset.unique_images, batch_size=preset.unique_images)
    images, labels, _ = data.scenes(data.train_split, range(preset.unique_images))
    return Scenes(images, labels, data.classnames, tuple(data.templates))


def device_batch(model: ClipBackend, sc: Scenes, batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    """images (B, 3, S, S) at the model's size, labels (B,), index (B,) into the unique scenes; all on `device`."""
    n = len(sc.labels)
    reps = math.ceil(batch / n)
    images = model.resize(sc.images.to(device)).repeat(reps, 1, 1, 1)[:batch].contiguous()
    labels = sc.labels.to(device).repeat(reps)[:batch]
    index = torch.arange(batch, device=device) % n
    model.check_images(images)  # checked once here; the timed steps run inside trusted_inputs()
    return {"images": images, "labels": labels, "index": index}


def classifier(model: ClipBackend, sc: Scenes, device: torch.device) -> ImageClassifier:
    clf = zero_shot_classifier(model.to(device), sc.classnames, sc.templates)
    set_trainable(clf, ["vision", "head"])
    return clf


def search_batch(acc: Accelerator, step: EngineStep, model: ClipBackend, sc: Scenes, preset: Preset,
                 info: DeviceInfo) -> tuple[int, list[dict]]:
    """The smallest candidate batch within 3% of the best images/s (an out-of-memory batch ends the search)."""
    rows = []
    for b in preset.batch_candidates:
        try:
            batch = device_batch(model, sc, b, info.device)
            t = time_interleaved({"ft": step.bound(batch)}, _short(preset), info.device)["ft"]
            rows.append({"batch": b, "images_per_s": b / t.seconds})
        except torch.cuda.OutOfMemoryError:
            rows.append({"batch": b, "images_per_s": None, "note": "out of memory"})
            break
        finally:
            batch = None
            gc.collect()
            if info.device.type == "cuda":
                torch.cuda.empty_cache()
    ok = [r for r in rows if r["images_per_s"]]
    if not ok:
        raise RuntimeError(f"no batch of {preset.batch_candidates} fits on {info.name}")
    best = max(r["images_per_s"] for r in ok)
    chosen = min(r["batch"] for r in ok if r["images_per_s"] >= 0.97 * best)
    return chosen, rows


def _short(preset: Preset) -> Preset:
    return replace(preset, repeats=2, warmup=1)


def measure_ft(acc: Accelerator, preset: Preset, info: DeviceInfo, batch_override: int | None = None) -> dict:
    """The fine-tuning step (and the masking comparison on the same student and batch)."""
    sc = scenes(preset)
    model = build_model(preset.model)
    clf = classifier(model, sc, info.device)
    ft = EngineStep(acc, CrossEntropyObjective(clf))
    search = []
    if batch_override is not None:
        b = batch_override
    elif preset.batch is not None:
        b = preset.batch
    else:
        b, search = search_batch(acc, ft, clf.model, sc, preset, info)
    batch = device_batch(clf.model, sc, b, info.device)
    flops_ft = count_flops(forward_backward(acc, ft.eager, batch))
    fns = {"eager": ft.bound(batch)}
    compile_note: dict[str, Any] = {"used": False, "why": "preset has compile off"}
    if preset.compile:
        t0 = time.perf_counter()
        try:
            ft(batch, compiled=preset.compile)
            sync(info.device)
            fns["compiled"] = ft.bound(batch, compiled=preset.compile)
            backend = preset.compile if isinstance(preset.compile, str) else "inductor"
            compile_note = {"backend": backend, "compile_seconds": time.perf_counter() - t0}
        except Exception as e:  # a compile failure is a finding, not the end of the run
            compile_note = {"used": False, "why": f"torch.compile failed: {type(e).__name__}: {str(e)[:300]}"}
    t = time_interleaved(fns, preset, info.device)
    best = min(t, key=lambda k: t[k].seconds)
    if "compiled" in t:
        compile_note.update(used=best == "compiled", eager_images_per_s=b / t["eager"].seconds,
                            compiled_images_per_s=b / t["compiled"].seconds,
                            why=f"{best} is faster ({t['eager'].seconds / t['compiled'].seconds:.2f}x "
                                "eager/compiled step time)")
    ft_row = {
        "model": f"{preset.model} (random init)", "image_size": clf.model.image_size, "batch": b,
        "batch_search": search, "trains": "image tower + head (CE), text tower frozen",
        "optimizer": f"AdamW ({'fused' if ft.fused else 'foreach'}), grad clip {ft.cfg.grad_clip}",
        "flops_per_step": flops_ft, "flops_per_image": flops_ft / b,
        "seconds_per_step": {k: v.seconds for k, v in t.items()}, "headline": best,
        "images_per_s": b / t[best].seconds, "mfu": mfu(flops_ft, t[best].seconds, info.peak_bf16_tflops),
        "mfu_target": MFU_TARGET, "torch_compile": compile_note,
        "host_syncs": host_syncs(fns[best], preset.sync_steps, info.device),
    }
    masking = measure_masking(acc, preset, info, clf, ft, batch, sc, flops_ft, t["eager"].seconds)
    return {"vit_ft": ft_row, "masking": masking}


def teacher_cams(teacher: ImageClassifier, sc: Scenes, device: torch.device, method: str) -> TeacherCams:
    """The frozen teacher's CAMs of the unique scenes, as the robust-FT cache holds them (CPU)."""
    n, g = len(sc.labels), teacher.model.grid_size
    table = TeacherCams.empty(n, g, method)
    images = teacher.model.resize(sc.images.to(device))
    table.cams[:] = compute_cam(teacher, images, sc.labels.to(device), method).float().cpu()
    table.done[:] = True
    return table


def floor_flops(acc: Accelerator, student: ImageClassifier, teacher: ImageClassifier, batch: dict) -> int:
    """The compute floor of a masked-distillation step: student forward + backward on the clean and
    the masked images (2B), teacher forward on the masked ones (B)."""
    x, y = batch["images"], batch["labels"]

    def run() -> None:
        with trusted_inputs(), acc.autocast():
            loss = F.cross_entropy(student(torch.cat([x, x])), torch.cat([y, y]))
        loss.backward()
        with torch.no_grad(), trusted_inputs(), acc.autocast():
            teacher.features(x)
        student.zero_grad(set_to_none=True)

    return count_flops(run)


def measure_masking(acc: Accelerator, preset: Preset, info: DeviceInfo, clf: ImageClassifier, ft: EngineStep,
                    batch: dict, sc: Scenes, flops_ft: int, ft_eager_s: float) -> dict:
    """mask_fd with cached teacher CAMs and with the student's own CAMs (gradcam) vs the eager FT step."""
    teacher = frozen_copy(clf)
    table = teacher_cams(teacher, sc, info.device, "gradcam")
    spec = MaskSpec(cam_method="gradcam")
    objs = {"mask_fd[cached]": MaskDistillObjective(clf, teacher, spec=spec, cam_source="cached", teacher_cams=table),
            "mask_fd[student,gradcam]": MaskDistillObjective(clf, teacher, spec=spec)}
    steps = {k: EngineStep(acc, o) for k, o in objs.items()}
    fns = {"ft": ft.bound(batch), **{k: s.bound(batch) for k, s in steps.items()}}
    t = time_interleaved(fns, preset, info.device)
    floor = floor_flops(acc, clf, teacher, batch)
    rate = flops_ft / t["ft"].seconds  # what the FT step achieves: the floor's time at that rate
    floor_s = floor / rate
    rows = {}
    for name, step in steps.items():
        f = count_flops(forward_backward(acc, step.eager, batch))
        rows[name] = {"seconds_per_step": t[name].seconds, "ratio_to_ft": t[name].seconds / t["ft"].seconds,
                      "flops_per_step": f, "flops_over_floor": f / floor, "ratio_to_floor": t[name].seconds / floor_s}
    return {
        "batch": len(batch["labels"]), "cam_method": "gradcam", "precision_note": "eager steps (FT compiled or not "
        "is in vit_ft); the floor's time is its FLOPs at the FT step's achieved FLOP/s",
        "ft_seconds_per_step": t["ft"].seconds, "floor_flops": floor, "floor_seconds": floor_s,
        "floor_definition": "student fwd+bwd on clean + masked images (2B) + teacher fwd on masked (B)",
        "variants": rows, "target_ratio_to_floor": MASK_FLOOR_TARGET,
        "host_syncs": host_syncs(fns["mask_fd[cached]"], preset.sync_steps, info.device),
        "ft_eager_seconds_reference": ft_eager_s,
    }
