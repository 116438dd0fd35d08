"""Study 01's methods: id -> how one (method, seed) cell is trained and measured.

Every id of `workbench.methods.robust_ft.METHODS` is registered here, in its order: most train
through `fine_tune`; `zero_shot` only evaluates; `lp_ft` starts from the same seed's linear
probe; `wise_ft` is derived from the `full_ft` cell (its WiSE-FT curve), never trained.
To add a method: add it to robust_ft (objective + builder), then it is registered here with
the default cell function, or give it its own below. A cell's training runs checkpoint where the
kit asks for it (`kit.checkpoint`: a sweep's jobs), so a requeued job resumes its cell.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.data import ClassificationData
from workbench.engine import save_atomic
from workbench.eval import evaluate
from workbench.methods.robust_ft import METHODS as FT_METHODS
from workbench.methods.robust_ft import build_teacher_cams, fine_tune, visited_indices, wise_ft
from workbench.models import ImageClassifier

from .. import kit

MASK_METHODS = ("mask_fd", "mask_fd_cached", "mask_fd_half")


@dataclass
class Session:
    """What every cell of a run shares: the zero-shot classifier (start and teacher), the data, caches."""

    cfg: Any
    zs: ImageClassifier
    data: ClassificationData
    cache: kit.CellCache | None  # bound by the kit before any cell runs
    zs_state: dict[str, torch.Tensor]
    progress: bool
    zs_metrics: dict | None = None
    seed: int | None = None  # the seed whose trained models `trained` holds
    trained: dict[str, ImageClassifier] = field(default_factory=dict)  # this seed's models, for dependants
    model_files: dict[str, Path] = field(default_factory=dict)  # method -> kept weights (first seed)

    weights: str = ""  # fingerprint of the zero-shot classifier every cell starts from
    data_fingerprint: Any = None

    @property
    def data_key(self) -> Any:  # what the cell cache keys the data by
        return self.data_fingerprint

    def bind(self, cache: kit.CellCache) -> None:
        self.cache = cache

    def done(self, cell: kit.Cell, metrics: dict) -> None:
        if cell.method == "zero_shot":
            self.zs_metrics = metrics

    def needs(self, cell: kit.Cell) -> list[Path]:
        """The kept weights a cached cell is only valid with (and where the notebook finds them)."""
        path = self.model_file(cell)
        if path is not None:
            self.model_files[cell.method] = path
        return [path] if path is not None else []

    def at_seed(self, seed: int | None) -> None:
        if seed != self.seed:  # dependants of the previous seed are done
            self.trained.clear()
            self.seed = seed

    def evaluate(self, clf: ImageClassifier, items: bool = True) -> dict[str, Any]:
        """Accuracies, and (`items`) each test image's hit: the claims' intervals count the test items too."""
        return evaluate(clf, self.data, self.cfg.n_eval, items=items)

    def model_file(self, cell: kit.Cell) -> Path | None:
        """Where `cell` keeps its weights (the first seed of each method in cfg.save_models), else None."""
        if cell.method in self.cfg.save_models and cell.seed == self.cfg.seeds[0]:
            return self.cache.artefact(cell, "model.pt")
        return None

    def seed_data(self, seed: int) -> ClassificationData:
        """The same data (sharing its cached test images) with the seed's training order."""
        out = copy.copy(self.data)
        out.seed = seed
        return out

    def teacher_cams(self, data: ClassificationData):
        """Teacher CAMs for every training image the run visits, cached on disk by model, data and method."""
        key = kit.hash_of({"cells": self.cache.key, "method": self.cfg.cam_method})
        return build_teacher_cams(self.zs, data, visited_indices(data, self.cfg.steps), self.cfg.cam_method,
                                  cache_file=kit.cache_dir("teacher_cams") / f"{key}.pt", progress=self.progress)


def _zero_shot(sess: Session, cell: kit.Cell) -> dict:
    return sess.evaluate(sess.zs)


def _state_diff(clf: ImageClassifier, zs_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors training changed (CPU copies): enough to rebuild the classifier from zero-shot."""
    return {k: v.detach().cpu().clone() for k, v in clf.state_dict().items() if not torch.equal(v, zs_state[k])}


def _train(sess: Session, cell: kit.Cell, init: ImageClassifier | None = None) -> dict:
    """Fine-tune `cell.method` from zero-shot (or `init`) for one seed and measure it."""
    cfg, data = sess.cfg, sess.seed_data(cell.seed)
    cams = None
    if METHODS[cell.method].info.get("teacher_cams") and cfg.mask_kind != "random":
        cams = sess.teacher_cams(data)
    run = fine_tune(cell.method, sess.zs, data, cfg.finetune_config(cell.seed), init=init, teacher_cams=cams,
                    progress=sess.progress, **_checkpoint("train"))
    clf = run.classifier
    sess.trained[cell.method] = clf
    metrics = {**sess.evaluate(clf), "seconds_per_step": run.seconds_per_step, "train_seconds": run.train.seconds,
               "final_loss": run.train.final_loss, "history": run.train.history}
    if cams is not None:  # one-off cost: CAM forward+backward of the frozen teacher, once per image
        metrics["teacher_cam_seconds"] = cams.seconds
        metrics["teacher_cam_images"] = int(cams.done.sum())
    if cell.method == "full_ft":
        metrics["wise_curve"] = _wise_curve(sess, clf, metrics)
    path = sess.model_file(cell)
    if path is not None:
        save_atomic(_state_diff(clf, sess.zs_state), path)
    return metrics


def _lp_ft(sess: Session, cell: kit.Cell) -> dict:
    """FT from the same seed's linear probe (retrained if that cell came from the cache)."""
    init = sess.trained.get("linear_probe") or fine_tune(
        "linear_probe", sess.zs, sess.seed_data(cell.seed), sess.cfg.finetune_config(cell.seed),
        progress=False, **_checkpoint("linear_probe")).classifier
    return _train(sess, cell, init=init)


def _checkpoint(name: str) -> dict:
    """`fine_tune`'s checkpoint arguments for the cell's training run `name`: a sweep's job checkpoints (and
    resumes when requeued); a notebook does not, unless asked (`kit.checkpoint`)."""
    ck = kit.checkpoint(name)
    return {"checkpoint": ck.path, "checkpoint_every": ck.every} if ck else {}


def _wise_curve(sess: Session, ft: ImageClassifier, ft_metrics: dict) -> list[dict]:
    """Accuracies of WiSE-FT at every alpha (0 = zero-shot, 1 = the fine-tuned model)."""
    accs = {k: v for k, v in ft_metrics.items() if isinstance(v, float) and k in (*sess.data.eval_splits, "ood_avg")}
    buffer = None
    curve = []
    for a in sess.cfg.wise_alphas:
        if a == 0.0:
            row = {k: sess.zs_metrics[k] for k in accs}
        elif a == 1.0:
            row = dict(accs)
        else:
            buffer = wise_ft(sess.zs, ft, a, out=buffer)  # one model reused along the curve
            row = sess.evaluate(buffer, items=False)
        curve.append({"alpha": a, **row})
    return curve


def _wise_ft(sess: Session, cell: kit.Cell, rows: dict[tuple[str, int | None], dict] | None = None) -> dict:
    """WiSE-FT at cfg.wise_alpha: a point of the same seed's full_ft curve (derived from its row, not trained)."""
    ft = rows[("full_ft", cell.seed)]
    point = next(r for r in ft["wise_curve"] if r["alpha"] == sess.cfg.wise_alpha)
    return {k: v for k, v in point.items() if k != "alpha"}


def _at_seed(fn):
    def run(sess: Session, cell: kit.Cell) -> dict:
        sess.at_seed(cell.seed)
        return fn(sess, cell)
    return run


RUN = {"zero_shot": _zero_shot, "lp_ft": _at_seed(_lp_ft), "wise_ft": _wise_ft}  # the rest: _train
INFO = {"zero_shot": {"seeded": False}, "wise_ft": {"derived": True}, "mask_fd_cached": {"teacher_cams": True}}

METHODS = kit.Registry("cam_counterfactual")
for _m in FT_METHODS.values():
    _needs = _m.needs if _m.name == "zero_shot" else ("zero_shot", *_m.needs)  # the WiSE-FT curve starts there
    METHODS.register(_m.name, _m.label, needs=_needs, **INFO.get(_m.name, {}))(RUN.get(_m.name, _at_seed(_train)))

