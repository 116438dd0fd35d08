"""Study 01: do CAM-masked counterfactual images keep a fine-tuned CLIP robust? (CVPR 2023, at workbench scale)

    from workbench.studies import cam_counterfactual as s
    result = s.run(s.Config.preset(quick=True))                  # minutes on a laptop CPU
    result = s.run(s.Config(model="ViT-B-32", pretrained="/weights/vitb32.pt", train_dir="imagenet/train",
                            id_test_dir="imagenet/val", ood_dirs={"sketch": "imagenet-sketch"}))

Every method of `workbench.methods.robust_ft` is trained for every seed from the same zero-shot
classifier on the world's `finetune` split (class tied to its context with p_tie: cows on grass)
or on an ImageFolder training set, and scored on the in-distribution test split and every OOD
split. Reported: a table mean +- std over seeds, the WiSE-FT curve, and what the CAMs cost
(the paper's student CAM every step vs the frozen teacher's CAMs computed once and cached).

Finished (method, seed) cells are cached by a hash of what decides them (config, model weights,
data), so a rerun only trains what changed.
"""
from __future__ import annotations

import copy
import hashlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from workbench.data import ClassificationData, ImageFolderSplits, WorldSplits
from workbench.methods.cam import CAM_METHODS, FILLS, MASK_KINDS
from workbench.methods.robust_ft import (METHOD_NAMES, METHODS, FineTuneConfig, MaskSpec, build_teacher_cams,
                                         check_methods, clone_module, fine_tune, visited_indices, wise_ft,
                                         with_dependencies, zero_shot_classifier)
from workbench.models import TINY_NAME, ClipBackend, ImageClassifier, load_model
from workbench.world import World, WorldConfig

from .common import cache_dir, config_hash, output_dir as make_output_dir, write_json_atomic, write_result

STUDY = "cam_counterfactual"
MASK_METHODS = ("mask_fd", "mask_fd_cached", "mask_fd_half")
_CELL_VERSION = 1


@dataclass(frozen=True)
class Config:
    """The study's knobs; defaults fit the whole notebook in ~10 minutes on 2 CPU cores."""

    model: str = TINY_NAME
    pretrained: str | None = None  # tag or local file; None = shipped weights (tiny) / random init
    methods: tuple[str, ...] = METHOD_NAMES
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 30
    batch_size: int = 64
    # The same for every method (AdamW, cosine, warm-up, grad clip 1.0). Set so that plain FT shows
    # the premise on tiny-world-clip (one seed, 300 test images; ID / ood_flipped after FT): 1e-4
    # 0.96 / 0.83 (zero-shot 0.74 / 0.81: no shortcut learned), 3e-4 0.97 / 0.77, 1e-3 0.93 / 0.46.
    lr: float = 3e-4
    weight_decay: float = 0.1
    warmup: float = 0.05
    w: float = 30.0  # distillation weight (paper default)
    threshold: float = 0.3  # object mask = CAM > threshold (paper headline)
    mask_kind: str = "object"
    fill: str = "single"
    cam_method: str = "rollout"  # the paper's code; "gradcam" is the cheaper option
    p_random: float = 0.5  # random masks: share of patches
    distill_fraction: float = 1.0  # share of each batch distilled (1 = the paper)
    n_train: int = 2048  # world: distinct training images (finetune split, indices 0..n_train-1)
    n_eval: int = 300  # test images per split
    wise_alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    wise_alpha: float = 0.5  # the WiSE-FT row of the table
    world_seed: int = 0
    p_tie: float = 0.95  # world: P(class on its own context) in finetune and id_test
    # The fine-tuning domain: contexts at this contrast (pretraining saw 0.35). tiny-world-clip
    # is at ~97% zero-shot on its own domain, which leaves FT nothing to gain; at 0.7 it is at
    # ~74% on id_test (the paper's CLIP: 68% on ImageNet) and the context is more salient.
    backdrop_contrast: float = 0.7
    train_dir: str | None = None  # ImageFolder scale path: <train_dir>/<class>/<image>
    id_test_dir: str | None = None
    ood_dirs: Mapping[str, str] | None = None  # name -> folder (or a list of folders)
    save_models: tuple[str, ...] = ("ft", "mask_fd")  # keep these weights (first seed) for the notebook
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        for name in ("methods", "seeds", "wise_alphas", "save_models"):
            value = getattr(self, name)
            if isinstance(value, (str, int, float)):
                raise ValueError(f"{name}={value!r} must be a sequence (e.g. ({value!r},))")
            object.__setattr__(self, name, tuple(value))
        check_methods(self.methods)
        check_methods(self.save_models)
        if not self.methods or not self.seeds:
            raise ValueError(f"methods={self.methods!r} and seeds={self.seeds!r} must not be empty")
        self._check_mask()
        for name in ("steps", "batch_size", "n_train", "n_eval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.batch_size < 2:
            raise ValueError(f"batch_size={self.batch_size!r}: fills copy patches from other images; use >= 2")
        if not self.lr > 0 or self.w < 0:
            raise ValueError(f"lr={self.lr!r} must be > 0 and w={self.w!r} >= 0")
        if not all(0.0 <= a <= 1.0 for a in (*self.wise_alphas, self.wise_alpha)):
            raise ValueError(f"wise_alphas={self.wise_alphas!r}, wise_alpha={self.wise_alpha!r}: alphas are in [0, 1]")
        object.__setattr__(self, "wise_alphas", tuple(sorted(set(self.wise_alphas) | {0.0, 1.0, self.wise_alpha})))
        self._check_folders()

    def _check_mask(self) -> None:
        if self.mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask_kind {self.mask_kind!r}; accepted: {', '.join(MASK_KINDS)}")
        if self.fill not in FILLS:
            raise ValueError(f"unknown fill {self.fill!r}; accepted: {', '.join(FILLS)}")
        if self.cam_method not in CAM_METHODS:
            raise ValueError(f"unknown cam_method {self.cam_method!r}; accepted: {', '.join(CAM_METHODS)}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold={self.threshold!r} is outside (0, 1); CAMs are normalised to [0, 1]")
        if not 0.0 <= self.p_random <= 1.0 or not 0.0 < self.distill_fraction <= 1.0:
            raise ValueError(f"p_random={self.p_random!r} must be in [0, 1] and distill_fraction="
                             f"{self.distill_fraction!r} in (0, 1]")

    def _check_folders(self) -> None:
        given = {"train_dir": self.train_dir, "id_test_dir": self.id_test_dir}
        if any(given.values()) or self.ood_dirs:
            missing = [k for k, v in given.items() if not v]
            if missing:
                raise ValueError(f"the ImageFolder path needs train_dir and id_test_dir; missing: {', '.join(missing)}")
            ood = self.ood_dirs or {}
            if isinstance(ood, str):
                raise ValueError(f"ood_dirs={ood!r} must be a dict name -> folder or a list of folders")
            if not isinstance(ood, Mapping):
                ood = {Path(p).name: p for p in ood}
            object.__setattr__(self, "ood_dirs", {str(k): str(v) for k, v in ood.items()})

    @property
    def uses_world(self) -> bool:
        return self.train_dir is None

    @classmethod
    def preset(cls, quick: bool = False, **overrides) -> "Config":
        """`quick`: one seed, a few steps, small pools (every method still runs), for tests."""
        if quick:
            small = dict(seeds=(0,), steps=4, batch_size=16, n_train=64, n_eval=64, wise_alphas=(0.0, 0.5, 1.0))
            overrides = {**small, **overrides}
        return cls(**overrides)

    def finetune_config(self, seed: int) -> FineTuneConfig:
        mask = MaskSpec(self.mask_kind, self.fill, self.threshold, self.p_random, self.cam_method)
        return FineTuneConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, warmup=self.warmup,
                              w=self.w, mask=mask, distill_fraction=self.distill_fraction, seed=seed)


@dataclass
class Result:
    """Per-(method, seed) metrics, the table over seeds, the WiSE-FT curve, the cost of CAMs, findings."""

    config: Config
    output_dir: Path
    model_name: str
    splits: tuple[str, ...]  # ID split first, then the OOD splits
    cells: dict[str, dict[int, dict]]  # method -> seed -> metrics (accuracies, seconds, ...)
    table: list[dict]  # one row per method: mean and std over seeds
    wise_curve: list[dict]  # one row per alpha: mean ID / OOD avg over seeds
    cost: list[dict]  # seconds per step and ratio to FT, per trained method
    premise: dict  # does FT raise ID and lower ood_flipped (world) / OOD avg over zero-shot?
    findings: str
    seconds: float
    zero_shot: ImageClassifier | None = field(default=None, repr=False)  # for CAM figures
    data: ClassificationData | None = field(default=None, repr=False)
    model_files: dict[str, Path] = field(default_factory=dict)  # method -> kept weights (first seed)

    def load_classifier(self, method: str) -> ImageClassifier | None:
        """The trained classifier of `method` (first seed) if its weights were kept (Config.save_models)."""
        if method == "zeroshot":
            return self.zero_shot
        path = self.model_files.get(method)
        if path is None or not path.is_file() or self.zero_shot is None:
            return None
        clf = clone_module(self.zero_shot)
        clf.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=False)
        return clf.eval()

    def write(self) -> Path:
        """(Re)write result.json; call again after saving figures so it lists them."""
        metrics = {"model": self.model_name, "splits": list(self.splits), "premise": self.premise,
                   "per_seed": self.cells}
        return write_result(self.output_dir, STUDY, self.config, metrics,
                            tables={"results": self.table, "wise_ft_curve": self.wise_curve, "cost": self.cost},
                            findings=self.findings, seconds=self.seconds)


# ---------------------------------------------------------------------------- building blocks
def build_data(cfg: Config, model: ClipBackend, seed: int = 0) -> ClassificationData:
    """The world's splits or the ImageFolder folders, with images at the model's resolution."""
    if cfg.uses_world:
        world = World(WorldConfig(seed=cfg.world_seed, p_tie=cfg.p_tie, backdrop_contrast=cfg.backdrop_contrast))
        return WorldSplits(world, n_train=cfg.n_train, batch_size=cfg.batch_size, image_size=model.image_size,
                           seed=seed)
    return ImageFolderSplits(cfg.train_dir, {"id_test": cfg.id_test_dir, **(cfg.ood_dirs or {})},
                             preprocess=model.preprocess, image_size=model.image_size,
                             batch_size=cfg.batch_size, seed=seed)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A hash of every parameter and buffer: cached results must not outlive a change of weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().float().contiguous().reshape(-1).numpy().tobytes())
    return h.hexdigest()[:16]


def cell_key(cfg: Config, method: str, seed: int, model_fp: str, data_fp: dict) -> str:
    """What decides one (method, seed) cell: shared settings, the method's own knobs, weights, data."""
    keep = ["steps", "batch_size", "lr", "weight_decay", "warmup", "n_eval"]
    if method in ("fd", *MASK_METHODS):
        keep.append("w")
    if method in MASK_METHODS:
        keep += ["threshold", "mask_kind", "fill", "cam_method", "p_random", "distill_fraction"]
    if method == "ft":
        keep.append("wise_alphas")
    if method in ("zeroshot", "wise_ft"):
        keep = ["n_eval"]
    settings = {k: getattr(cfg, k) for k in keep}
    return config_hash({"v": _CELL_VERSION, "method": method, "seed": seed if method != "zeroshot" else None,
                        "settings": settings, "weights": model_fp, "data": data_fp})


def _device(cfg: Config) -> torch.device:
    return torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def _state_diff(clf: ImageClassifier, zs_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors training changed (CPU copies): enough to rebuild the classifier from zero-shot."""
    return {k: v.detach().cpu().clone() for k, v in clf.state_dict().items() if not torch.equal(v, zs_state[k])}


def _with_seed(data: ClassificationData, seed: int) -> ClassificationData:
    """The same data (sharing its cached test images) with another training order."""
    out = copy.copy(data)
    out.seed = seed
    return out


# ---------------------------------------------------------------------------- one (method, seed) cell
@dataclass
class _Session:
    """What every cell of a run shares."""

    cfg: Config
    zs: ImageClassifier
    data: ClassificationData
    cell_dir: Path
    zs_state: dict[str, torch.Tensor]
    progress: bool
    zs_metrics: dict | None = None
    trained: dict[tuple[str, int], ImageClassifier] = field(default_factory=dict)  # for dependants
    model_files: dict[str, Path] = field(default_factory=dict)

    def evaluate(self, clf: ImageClassifier) -> dict[str, float]:
        return self.data.evaluate(clf, self.cfg.n_eval)


def _teacher_cams(sess: _Session, data: ClassificationData):
    """Teacher CAMs for every training image the run visits, cached on disk by model, data and method."""
    cfg = sess.cfg
    key = config_hash({"weights": sess.cell_dir.name, "method": cfg.cam_method})
    return build_teacher_cams(sess.zs, data, visited_indices(data, cfg.steps), cfg.cam_method,
                              cache_file=cache_dir("teacher_cams") / f"{key}.pt", progress=sess.progress)


def _train_cell(sess: _Session, method: str, seed: int, model_file: Path | None) -> dict:
    cfg, data = sess.cfg, _with_seed(sess.data, seed)
    ft_cfg = cfg.finetune_config(seed)
    init = None
    if method == "lp_ft":
        init = sess.trained.get(("lp", seed)) or fine_tune("lp", sess.zs, data, ft_cfg, progress=False).classifier
    cams = None
    if method == "mask_fd_cached" and cfg.mask_kind != "random":
        cams = _teacher_cams(sess, data)
    run = fine_tune(method, sess.zs, data, ft_cfg, init=init, teacher_cams=cams, progress=sess.progress)
    clf = run.classifier
    sess.trained[(method, seed)] = clf
    metrics = {**sess.evaluate(clf), "seconds_per_step": run.seconds_per_step, "train_seconds": run.train.seconds,
               "final_loss": run.train.final_loss, "history": run.train.history}
    if cams is not None:  # one-off cost: CAM forward+backward of the frozen teacher, once per image
        metrics["teacher_cam_seconds"] = cams.seconds
        metrics["teacher_cam_images"] = int(cams.done.sum())
    if method == "ft":
        metrics["wise_curve"] = _wise_curve(sess, clf, metrics)
    if model_file is not None:
        torch.save(_state_diff(clf, sess.zs_state), model_file)
    return metrics


def _wise_curve(sess: _Session, ft: ImageClassifier, ft_metrics: dict) -> list[dict]:
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
            row = sess.evaluate(buffer)
        curve.append({"alpha": a, **row})
    return curve


def _cell(sess: _Session, method: str, seed: int, cells: dict, model_fp: str, data_fp: dict,
          use_cache: bool) -> dict:
    """One (method, seed) cell's metrics: from the cache, or trained/derived and cached."""
    if method == "wise_ft":  # derived from the ft cell's curve, never stored on its own
        row = next(r for r in cells["ft"][seed]["wise_curve"] if r["alpha"] == sess.cfg.wise_alpha)
        return {**{k: v for k, v in row.items() if k != "alpha"}, "cached": cells["ft"][seed]["cached"]}
    key = cell_key(sess.cfg, method, seed, model_fp, data_fp)
    file = sess.cell_dir / f"{method}-{key}.json"
    keep = method in sess.cfg.save_models and seed == sess.cfg.seeds[0]
    model_file = sess.cell_dir / f"model-{method}-{key}.pt" if keep else None
    if keep:
        sess.model_files[method] = model_file
    if use_cache and file.is_file() and (model_file is None or model_file.is_file()):
        return {**json.loads(file.read_text()), "cached": True}
    if method == "zeroshot":
        metrics = sess.evaluate(sess.zs)
    else:
        metrics = _train_cell(sess, method, seed, model_file)
    write_json_atomic(file, metrics)
    return {**metrics, "cached": False}



# ---------------------------------------------------------------------------- run
def run(cfg: Config | None = None, output_dir: str | Path | None = None, progress: bool = True,
        use_cache: bool = True, model: ClipBackend | None = None) -> Result:
    """Train every method for every seed (cached cells are reused), evaluate, write result.json.

    `model`: an already loaded backend to use instead of loading `cfg.model` (it is not modified).
    """
    cfg = cfg or Config()
    t0 = time.perf_counter()
    out = make_output_dir(output_dir, STUDY)
    device = _device(cfg)
    owned = model is None
    if owned:
        torch.manual_seed(0)  # random-init architectures (the scale path offline) are reproducible
        model = load_model(cfg.model, pretrained=cfg.pretrained, device=device)
    data = build_data(cfg, model)
    zs = zero_shot_classifier(model, data.classnames, inplace=owned).to(device).eval()
    del model
    zs.requires_grad_(False)
    model_fp, data_fp = weights_fingerprint(zs), data.fingerprint()
    cell_dir = cache_dir(STUDY) / config_hash({"weights": model_fp, "data": data_fp})
    cell_dir.mkdir(parents=True, exist_ok=True)
    sess = _Session(cfg, zs, data, cell_dir, {k: v.clone() for k, v in zs.state_dict().items()}, progress)
    methods = ("zeroshot", *[m for m in with_dependencies(cfg.methods) if m != "zeroshot"])
    cells: dict[str, dict[int, dict]] = {m: {} for m in methods}
    for seed in cfg.seeds:
        for method in methods:
            if method == "zeroshot" and cells["zeroshot"]:  # no training: the same for every seed
                cells["zeroshot"][seed] = cells["zeroshot"][cfg.seeds[0]]
                continue
            cells[method][seed] = _cell(sess, method, seed, cells, model_fp, data_fp, use_cache)
            if method == "zeroshot":
                sess.zs_metrics = cells["zeroshot"][seed]
        sess.trained.clear()  # dependants of this seed are done
    shown = {m: cells[m] for m in ("zeroshot", *cfg.methods) if m in cells}
    splits = (*data.eval_splits, "ood_avg") if data.ood_splits else data.eval_splits
    table = results_table(shown, splits)
    curve = wise_curve_table(cells.get("ft", {}), splits) if "ft" in cells else []
    cost = cost_table(cells)
    premise = check_premise(cells, data)
    findings = write_findings(cfg, table, curve, cost, premise, data)
    result = Result(cfg, out, zs.model.name, data.eval_splits, shown, table, curve, cost, premise, findings,
                    time.perf_counter() - t0, zero_shot=zs, data=data, model_files=dict(sess.model_files))
    result.write()
    return result


# ---------------------------------------------------------------------------- tables
def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def results_table(cells: Mapping[str, Mapping[int, dict]], splits: tuple[str, ...]) -> list[dict]:
    """One row per method: mean and std over seeds of every split's accuracy, and seconds per step."""
    rows = []
    for method, per_seed in cells.items():
        row: dict[str, Any] = {"method": method, "label": METHODS[method].label, "seeds": len(per_seed)}
        for split in splits:
            row[split], row[f"{split}_std"] = _mean_std([c[split] for c in per_seed.values()])
        sps = [c["seconds_per_step"] for c in per_seed.values() if "seconds_per_step" in c]
        row["seconds_per_step"] = statistics.fmean(sps) if sps else None
        rows.append(row)
    return rows


def wise_curve_table(ft_cells: Mapping[int, dict], splits: tuple[str, ...]) -> list[dict]:
    """One row per alpha: accuracies averaged over seeds (and the spread of OOD avg)."""
    alphas = [r["alpha"] for r in next(iter(ft_cells.values()))["wise_curve"]]
    rows = []
    for i, a in enumerate(alphas):
        pts = [c["wise_curve"][i] for c in ft_cells.values()]
        row = {"alpha": a}
        for split in splits:
            row[split], row[f"{split}_std"] = _mean_std([p[split] for p in pts])
        rows.append(row)
    return rows


def cost_table(cells: Mapping[str, Mapping[int, dict]]) -> list[dict]:
    """Seconds per training step of every trained method, as a ratio to plain FT, plus one-off costs."""
    base = None
    if "ft" in cells:
        base = statistics.fmean(c["seconds_per_step"] for c in cells["ft"].values())
    rows = []
    for method, per_seed in cells.items():
        sps = [c["seconds_per_step"] for c in per_seed.values() if c.get("seconds_per_step")]
        if not sps:
            continue
        s = statistics.fmean(sps)
        once = [c["teacher_cam_seconds"] for c in per_seed.values() if "teacher_cam_seconds" in c]
        rows.append({"method": method, "label": METHODS[method].label, "seconds_per_step": s,
                     "ratio_to_ft": s / base if base else None,
                     "one_off_seconds": max(once) if once else 0.0,
                     "cached_cells": sum(bool(c.get("cached")) for c in per_seed.values())})
    return rows


def _mean(cells: Mapping[str, Mapping[int, dict]], method: str, split: str) -> float:
    return statistics.fmean(c[split] for c in cells[method].values())


def check_premise(cells: Mapping[str, Mapping[int, dict]], data: ClassificationData) -> dict:
    """Does plain FT raise ID accuracy over zero-shot and lower it under the shift?"""
    if "ft" not in cells:
        return {"checked": False, "why": "ft was not run"}
    shift = "ood_flipped" if "ood_flipped" in data.ood_splits else ("ood_avg" if data.ood_splits else None)
    zs_id, ft_id = _mean(cells, "zeroshot", data.id_split), _mean(cells, "ft", data.id_split)
    out = {"checked": True, "id_split": data.id_split, "zeroshot_id": zs_id, "ft_id": ft_id,
           "id_gain": ft_id - zs_id}
    if shift is not None:
        zs_s, ft_s = _mean(cells, "zeroshot", shift), _mean(cells, "ft", shift)
        out.update({"shift_split": shift, "zeroshot_shift": zs_s, "ft_shift": ft_s, "shift_change": ft_s - zs_s})
    out["holds"] = bool(out["id_gain"] > 0 and out.get("shift_change", -1.0) < 0)
    return out


# ---------------------------------------------------------------------------- findings
def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _row(table: list[dict], method: str) -> dict | None:
    return next((r for r in table if r["method"] == method), None)


def _describe(row: dict, id_split: str, ood: str) -> str:
    return (f"{row['label']} {_pct(row[id_split])} ID / {_pct(row[ood])} OOD "
            f"(+-{100 * row[f'{ood}_std']:.1f})")


def _premise_sentence(p: dict) -> str:
    if not p.get("checked"):
        return "The premise was not checked (FT was not run)."
    s = (f"Premise: plain FT moves {p['id_split']} from {_pct(p['zeroshot_id'])} (zero-shot) to {_pct(p['ft_id'])}")
    if "shift_split" in p:
        s += f" and {p['shift_split']} from {_pct(p['zeroshot_shift'])} to {_pct(p['ft_shift'])}"
    return s + (" -- it holds." if p["holds"] else " -- it does NOT hold in this run, so the robustness "
                                                   "comparison below has little to protect.")


def _versus(r: dict, other: dict | None, name: str, ood: str) -> str:
    """'+7.7 OOD vs FT (above)': the difference and whether it exceeds the seeds' spread."""
    if other is None:
        return ""
    d, noise = r[ood] - other[ood], max(r[f"{ood}_std"], other[f"{ood}_std"])
    verdict = "within seed noise" if abs(d) <= noise else ("above" if d > 0 else "below")
    return f"{100 * d:+.1f} OOD vs {name} ({verdict})"


def wise_at(curve: list[dict], id_split: str, ood: str, x: float) -> float | None:
    """OOD accuracy of the WiSE-FT curve at ID accuracy x (linear between alphas); None off the curve."""
    pts = sorted((c[id_split], c[ood]) for c in curve)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def _masking_sentence(table: list[dict], curve: list[dict], id_split: str, ood: str) -> str:
    out = []
    for m in MASK_METHODS:
        r = _row(table, m)
        if r is None:
            continue
        bits = [_versus(r, _row(table, o), n, ood) for o, n in (("ft", "FT"), ("zeroshot", "zero-shot"),
                                                                 ("fd", "FD on clean images"))]
        on_curve = wise_at(curve, id_split, ood, r[id_split]) if curve else None
        if on_curve is not None:
            bits.append(f"{100 * (r[ood] - on_curve):+.1f} OOD vs the WiSE-FT curve at the same ID accuracy")
        out.append(_describe(r, id_split, ood) + ": " + ", ".join(b for b in bits if b))
    return ("; ".join(out) + ".") if out else ""


def _verdict(table: list[dict], ood: str) -> str:
    """How much of FT's OOD loss the masks win back, and what they add over clean distillation."""
    mask = _row(table, "mask_fd") or _row(table, "mask_fd_cached")
    ft, zs, fd = _row(table, "ft"), _row(table, "zeroshot"), _row(table, "fd")
    if mask is None or ft is None or zs is None:
        return ""
    loss = zs[ood] - ft[ood]
    if loss <= 0:
        return f"FT did not lose OOD accuracy here ({100 * -loss:+.1f}), so there was nothing for the masks to keep."
    s = (f"In short: {mask['label']} keeps {(mask[ood] - ft[ood]) / loss:.0%} of the {100 * loss:.1f} OOD points "
         f"FT loses")
    if fd is not None:
        s += "; against distillation on clean images the masks add " + _versus(mask, fd, "FD", ood)
    return s + "."


def write_findings(cfg: Config, table: list[dict], curve: list[dict], cost: list[dict], premise: dict,
                   data: ClassificationData) -> str:
    """A short honest paragraph with the numbers, whatever they say."""
    id_split = data.id_split
    ood = "ood_avg" if data.ood_splits else id_split
    where = (f"the world (finetune p_tie={cfg.p_tie}, backdrop contrast {cfg.backdrop_contrast}, "
             f"{cfg.n_train} images)" if cfg.uses_world
             else f"ImageFolder {cfg.train_dir}")
    parts = [f"{cfg.model}, {len(cfg.seeds)} seed(s), {cfg.steps} steps x batch {cfg.batch_size}, lr {cfg.lr:g}, "
             f"on {where}; OOD = mean over {', '.join(data.ood_splits) or 'none'}.", _premise_sentence(premise)]
    parts.append(f"Masked distillation ({cfg.mask_kind} mask, {cfg.fill} fill, threshold {cfg.threshold}, "
                 f"{cfg.cam_method} CAM, w={cfg.w:g}): " + _masking_sentence(table, curve, id_split, ood))
    verdict = _verdict(table, ood)
    if verdict:
        parts.append(verdict)
    others = [_describe(r, id_split, ood) for r in table if r["method"] not in MASK_METHODS]
    if others:
        parts.append("Others: " + "; ".join(others) + ".")
    ranked = sorted((r for r in table if r["method"] != "zeroshot"), key=lambda r: -r[ood])
    if ranked:
        parts.append(f"Best OOD after fine-tuning: {ranked[0]['label']} ({_pct(ranked[0][ood])}).")
    c = {r["method"]: r for r in cost}
    if "ft" in c and any(m in c for m in MASK_METHODS):
        bits = [f"{c[m]['label']} {c[m]['ratio_to_ft']:.2f}x" for m in MASK_METHODS if m in c]
        once = c.get("mask_fd_cached", {}).get("one_off_seconds", 0.0)
        parts.append(f"Cost per step relative to FT ({c['ft']['seconds_per_step']:.2f} s): " + ", ".join(bits)
                     + (f"; the cached teacher CAMs cost {once:.1f} s once." if once else "."))
    parts.append("For reference, the paper's setting (CLIP ViT-B/16 on ImageNet, ID / OOD avg): zero-shot "
                 "68.3/58.7, FT 81.3/54.9, WiSE-FT ~81.7/63.0; its claim is that masked distillation keeps "
                 "the OOD accuracy that FT loses.")
    return " ".join(parts)


# ---------------------------------------------------------------------------- for the notebook's figures
GALLERY_METHODS = ("gradcam", "rollout", "GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "EigenCAM",
                   "ScoreCAM")


def gallery_methods(classifier: ImageClassifier, quick: bool = False) -> tuple[str, ...]:
    """CAM methods for the gallery: all of them, except ScoreCAM (one forward per channel per image)
    when quick or on towers wider than 256 channels, where it takes minutes on a CPU."""
    width = getattr(getattr(classifier.model.model, "visual", None), "transformer", None)
    width = getattr(width, "width", 0)
    cheap = not quick and width and width <= 256
    return GALLERY_METHODS if cheap else tuple(m for m in GALLERY_METHODS if m != "ScoreCAM")


def examples(data: ClassificationData, split: str, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n test images (n, 3, S, S) of a split and their labels (n,), indices into data.classnames."""
    images, labels = next(iter(data.eval_batches(split, n, batch_size=n)))
    return images, labels


def cam_maps(classifier: ImageClassifier, images: torch.Tensor, labels: torch.Tensor,
             methods: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """method -> CAMs (B, g, g) of the true class, for the gallery."""
    from workbench.methods.cam import compute_cam

    device = next(classifier.parameters()).device
    return {m: compute_cam(classifier, images.to(device), labels.to(device), m).cpu() for m in methods}
