"""CAMs of the frozen teacher, computed once per training image and looked up by index.

The teacher never changes, so its CAM of an image's true class is a constant of the image:
computing it once (and saving it, keyed by a hash of what decides it) takes the CAM
forward+backward out of every training step.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from workbench.checks import check_device, safe_torch_load
from workbench.engine import save_atomic
from workbench.methods.cam import compute_cam
from workbench.models import ImageClassifier


class TeacherCams:
    """CAMs (N, g, g) for a training pool of N images; `done` (N,) marks the ones computed."""

    def __init__(self, cams: torch.Tensor, done: torch.Tensor, method: str, seconds: float = 0.0):
        self.cams, self.done, self.method = cams, done, method
        self.seconds = float(seconds)  # compute time spent on the CAMs held, over every build

    @classmethod
    def empty(cls, n: int, grid: int, method: str) -> TeacherCams:
        return cls(torch.zeros(n, grid, grid), torch.zeros(n, dtype=torch.bool), method)

    def lookup(self, index: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
        """CAMs (B, g, g) of training images `index` (B,)."""
        device = check_device(device) if device is not None else None
        idx = torch.as_tensor(index, dtype=torch.long).cpu()
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self.done)):
            raise IndexError(f"index {int(idx.max())} is outside the cached pool of {len(self.done)} images")
        if not self.done[idx].all():
            missing = idx[~self.done[idx]][:5].tolist()
            raise KeyError(f"no cached teacher CAM for training images {missing}; build them first")
        return self.cams[idx].to(device or "cpu")

    def save(self, path: str | Path) -> None:
        save_atomic({"cams": self.cams, "done": self.done, "method": self.method, "seconds": self.seconds}, path)

    @classmethod
    def load(cls, path: str | Path) -> TeacherCams:
        state = safe_torch_load(path, "teacher-CAM cache")
        missing = [k for k in ("cams", "done", "method") if not isinstance(state, dict) or k not in state]
        if missing:
            held = f"keys {', '.join(map(str, state))}" if isinstance(state, dict) else f"a {type(state).__name__}"
            raise ValueError(f"teacher-CAM cache {path} is not one (it lacks {', '.join(missing)}; it holds {held}); "
                             "accepted: a file TeacherCams.save wrote")
        return cls(state["cams"], state["done"], state["method"], state.get("seconds", 0.0))


def build_teacher_cams(teacher: ImageClassifier, data, indices: Sequence[int] | torch.Tensor, method: str,
                       batch_size: int = 64, cache_file: str | Path | None = None,
                       progress: bool = True) -> TeacherCams:
    """Teacher CAMs of the true class for training images `indices` of `data` (a ClassificationData).

    With `cache_file`, CAMs already there are reused and new ones are added to it.
    """
    grid = teacher.model.grid_size
    cams = None
    if cache_file is not None and Path(cache_file).is_file():
        try:
            cams = TeacherCams.load(cache_file)
        except Exception as err:  # truncated or unreadable: never fatal, set aside and recompute
            aside = Path(cache_file).with_name(Path(cache_file).name + ".corrupt")
            os.replace(cache_file, aside)
            warnings.warn(f"teacher-CAM cache {cache_file} is unreadable ({type(err).__name__}); set aside as "
                          f"{aside.name}, recomputing", RuntimeWarning, stacklevel=2)
    if cams is not None:
        if cams.method != method or cams.cams.shape != (data.train_size, grid, grid):
            cams = None  # a different pool or method under the same name: start afresh
    cams = cams or TeacherCams.empty(data.train_size, grid, method)
    todo = torch.as_tensor(indices, dtype=torch.long).unique()
    todo = todo[~cams.done[todo]]
    device = next(teacher.parameters()).device
    t0 = time.perf_counter()
    for start in tqdm(range(0, len(todo), batch_size), desc=f"teacher CAMs ({method})",
                      disable=not progress or len(todo) == 0, leave=False):
        idx = todo[start:start + batch_size]
        images, labels = data.train_batch(idx)
        cams.cams[idx] = compute_cam(teacher, images.to(device), labels.to(device), method).float().cpu()
        cams.done[idx] = True
    if len(todo):
        cams.seconds += time.perf_counter() - t0
        if cache_file is not None:
            cams.save(cache_file)
    return cams
