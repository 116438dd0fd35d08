"""Study 01: do CAM-masked counterfactual images keep a fine-tuned CLIP robust? (CVPR 2023, at workbench scale)

    from workbench.studies import cam_counterfactual as s
    result = s.run(s.Config.preset(quick=True))                  # minutes on a laptop CPU
    result = s.run(s.Config(model="ViT-B-32", pretrained="/weights/vitb32.pt", train_dir="imagenet/train",
                            id_test_dir="imagenet/val", ood_dirs={"sketch": "imagenet-sketch"}))

Every method of `workbench.methods.robust_ft` is trained for every seed from the same zero-shot
classifier on the world's `finetune` split (class tied to its context with p_tie: cows on grass)
or on an ImageFolder training set, and scored on the in-distribution test split and every OOD
split. Reported: a table mean ± std over seeds, paired comparisons with 95% intervals, the
WiSE-FT curve, and what the CAMs cost (the paper's student CAM every step vs the frozen
teacher's CAMs computed once and cached).

The study's own parts: `config`, `methods` (the registry and one cell's work), `tables`,
`findings`, `gallery` (CAM pictures for the notebook). Caching, progress, statistics and the
result file come from `workbench.studies.kit`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import torch

from workbench.checks import Check
from workbench.data import ClassificationData, ImageFolderSplits, WorldSplits
from workbench.methods.robust_ft import clone_module, zero_shot_classifier
from workbench.models import ClipBackend, ImageClassifier, load_model
from workbench.world import World, WorldConfig

from .. import kit
from . import findings as _findings
from .claims import CLAIMS
from .config import CACHE_SKIP, QUICK, Config
from .gallery import GALLERY_METHODS, cam_maps, examples, gallery_methods
from .methods import MASK_METHODS, METHODS, Session
from .tables import (
                     by_method,
                     check_premise,
                     cost_table,
                     localization_rows,
                     photo_rows,
                     results_table,
                     wise_at,
                     wise_curve_table,
)

NAME = "cam_counterfactual"
CACHE_VERSION = 3  # 3: cells keep each test image's hit (<split>_items)
# The notebook's parameters that are no Config field, checked by `workbench run` before the notebook starts
NOTEBOOK_PARAMETERS = {"n_examples": Annotated[int, Check(ge=1, note="images in the CAM gallery")],
                       "n_localization": Annotated[int | None, Check(ge=1, note="None: 64 images (16 when quick)")]}

__all__ = ["NAME", "CLAIMS", "NOTEBOOK_PARAMETERS",
           "CACHE_SKIP", "GALLERY_METHODS", "MASK_METHODS", "METHODS", "QUICK", "STUDY", "Config", "Result",
           "build_data", "by_method", "cam_maps", "cell_cache", "check_premise", "cost_table", "examples",
           "gallery_methods", "localization_rows", "photo_rows", "plan_cells", "results_table", "run", "wise_at",
           "wise_curve_table"]


@dataclass(kw_only=True)
class Result(kit.Result):
    """Cells as rows, the table over seeds, the WiSE-FT curve, the cost of CAMs, paired comparisons."""

    model_name: str = ""
    splits: tuple[str, ...] = ()  # ID split first, then the OOD splits
    table: list[dict] = field(default_factory=list)  # one row per method: mean, std, CI over seeds
    wise_curve: list[dict] = field(default_factory=list)  # one row per alpha: mean ID / OOD over seeds
    cost: list[dict] = field(default_factory=list)  # seconds per step and ratio to FT, per trained method
    premise: dict = field(default_factory=dict)  # does FT raise ID and lower ood_flipped / OOD avg?
    comparisons: list[dict] = field(default_factory=list)
    zero_shot: ImageClassifier | None = field(default=None, repr=False)  # for CAM figures
    data: ClassificationData | None = field(default=None, repr=False)
    model_files: dict[str, Path] = field(default_factory=dict)  # method -> kept weights (first seed)

    @property
    def cells(self) -> dict[str, dict[int | None, dict]]:
        """method -> seed -> the cell's row (zero-shot, run once, under seed None)."""
        return by_method(self.rows)

    def load_classifier(self, method: str) -> ImageClassifier | None:
        """The trained classifier of `method` (first seed) if its weights were kept (Config.save_models)."""
        if method == "zero_shot":
            return self.zero_shot
        path = self.model_files.get(method)
        if path is None or self.zero_shot is None:
            return None
        state = kit.load_tensors(path)
        if state is None:
            return None
        clf = clone_module(self.zero_shot)
        clf.load_state_dict(state, strict=False)
        return clf.eval()


def build_data(cfg: Config, model: ClipBackend, seed: int = 0) -> ClassificationData:
    """The world's splits or the ImageFolder folders, with images at the model's resolution."""
    if cfg.uses_world:
        world = World(WorldConfig(seed=cfg.world_seed, p_tie=cfg.p_tie, backdrop_contrast=cfg.backdrop_contrast))
        return WorldSplits(world, n_train=cfg.n_train, batch_size=cfg.batch_size, image_size=model.image_size,
                           seed=seed)
    return ImageFolderSplits(cfg.train_dir, {"id_test": cfg.id_test_dir, **(cfg.ood_dirs or {})},
                             preprocess=model.preprocess, image_size=model.image_size,
                             batch_size=cfg.batch_size, seed=seed)


def build_context(cfg: Config, use_cache: bool = True, progress: bool = True,
                  model: ClipBackend | None = None) -> Session:
    """The zero-shot classifier every cell starts from (and its teacher), the data, the shared caches.

    `model`: an already loaded backend to use instead of loading `cfg.model` (it is not modified)."""
    device = kit.device(cfg.device)
    owned = model is None
    if owned:
        torch.manual_seed(0)  # random-init architectures (the scale path offline) are reproducible
        model = load_model(cfg.model, pretrained=cfg.pretrained, device=device)
    data = build_data(cfg, model)
    zs = zero_shot_classifier(model, data.classnames, data.templates, inplace=owned).to(device).eval()
    zs.requires_grad_(False)
    bars = progress and not kit.headless()  # training bars: live in JupyterLab, never saved into outputs
    return Session(cfg, zs, data, None, {k: v.clone() for k, v in zs.state_dict().items()}, bars,
                   weights=kit.weights_fingerprint(zs), data_fingerprint=data.fingerprint())


def report(sess: Session, rows: list[dict], verdicts: list[kit.Verdict]) -> kit.Report:
    cfg, data = sess.cfg, sess.data
    splits = (*data.eval_splits, "ood_avg") if data.ood_splits else data.eval_splits
    table = results_table(rows, splits)
    ft_rows = [r for r in rows if r["method"] == "full_ft"]
    curve = wise_curve_table(ft_rows, splits) if ft_rows else []
    cost = cost_table(rows)
    premise = check_premise(rows, data)
    text, comparisons = _findings.write(cfg, rows, table, cost, premise, data, verdicts)
    return kit.Report(
        tables={"results": table, "comparisons": comparisons, "wise_ft_curve": curve, "cost": cost},
        findings=text, headline=_findings.headline(rows, table, data, verdicts), main_table="results",
        percent=(*splits, "iou", "pointing", "diff", "lo", "hi", "detectable"),
        metrics={"model": sess.zs.model.name, "splits": list(data.eval_splits), "premise": premise},
        extra={"model_name": sess.zs.model.name, "splits": data.eval_splits, "table": table, "wise_curve": curve,
               "cost": cost, "premise": premise, "comparisons": comparisons, "zero_shot": sess.zs, "data": data,
               "model_files": dict(sess.model_files)})


def derive(sess: Session, rows: list[dict]) -> list[dict]:
    return _with_derived(sess, sess.cfg, rows)


STUDY = kit.Study(name=NAME, config=Config, methods=METHODS, context=build_context, report=report,
                  cache_skip=CACHE_SKIP, version=CACHE_VERSION, quick=QUICK, claims=CLAIMS, result=Result,
                  order="seed", derive=derive, title="study 01")


def plan_cells(cfg: Config) -> list[kit.Cell]:
    """zero_shot once, then per seed every trained method after what it needs (derived ones excluded)."""
    return STUDY.plan(STUDY.resolve(cfg))


def run(cfg: Config | None = None, output_dir: str | Path | None = None, progress: bool = True,
        use_cache: bool = True, model: ClipBackend | None = None) -> Result:
    """Train every method for every seed (cached cells are reused), evaluate, judge the claims, write result.json.

    `model`: an already loaded backend to use instead of loading `cfg.model` (it is not modified)."""
    return STUDY.run(cfg, output_dir, progress=progress, use_cache=use_cache, model=model)


def _with_derived(sess: Session, cfg: Config, rows: list[dict]) -> list[dict]:
    """`rows` in method order, with the derived methods' rows (wise_ft) computed from theirs."""
    index = {(r["method"], r["seed"]): r for r in rows}
    out = [index[("zero_shot", None)]]
    for m in METHODS.with_needs(STUDY.method_ids(cfg)):
        if m == "zero_shot":
            continue
        own = METHODS[m].needs[-1] if METHODS[m].derived else m  # a derived method's own need (zero_shot first)
        for s in sorted(seed for method, seed in index if method == own):  # cfg.seeds, and claim seeds
            if METHODS[m].derived:
                need = index[(own, s)]
                out.append({**kit.Cell(m, None, s).row(METHODS[m].run(sess, kit.Cell(m, None, s), index)),
                            "cached": need["cached"]})
            else:
                out.append(index[(m, s)])
    shown = {"zero_shot", *STUDY.method_ids(cfg)}
    return [r for r in out if r["method"] in shown]
