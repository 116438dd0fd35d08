"""Study 00: a tour of the world and the model -- zero-shot accuracy of a CLIP on every eval split.

    from workbench.studies import world_and_model as s
    result = s.run(s.Config.preset(quick=True))        # tiny-world-clip, 200 images per split
    result = s.run(s.Config(model="ViT-B-32"))          # any name load_model accepts (random init offline)

What it measures, for one model:

* zero-shot accuracy per split (prompts: the world's templates, averaged as CLIP averages its 80);
* per-class accuracy on `heldout` (balanced classes, all contexts, photos);
* the confusion matrix on `ood_flipped` (every object on a context that is *not* its `finetune` one).

Predictions are cached by a hash of the config and of the model's weights, so rerunning the
notebook redraws without re-evaluating.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Sequence

import torch

from workbench.checks import Check, check_fields
from workbench.engine import save_atomic
from workbench.eval import predict
from workbench.models import TINY_DIR, TINY_NAME, ClipBackend, ImageClassifier, check_model, load_model
from workbench.world import EVAL_SPLITS, SplitName, World, WorldConfig, zero_shot_templates

from . import kit

STUDY = "world_and_model"
QUICK_N_EVAL = 200
PER_CLASS_SPLIT = "heldout"
CONFUSION_SPLIT = "ood_flipped"

# One line per split: what it shows and why it exists (used in tables and the notebook).
SPLIT_NOTES: dict[str, str] = {
    "pretrain": "the model's 'web': all contexts, 10% sketches, captions",
    "heldout": "balanced classes x all contexts, photos, never trained on",
    "finetune": "class tied to its own context with p_tie (cows on grass)",
    "id_test": "same distribution as finetune (tie kept)",
    "ood_flipped": "tie broken: every object on another seen context",
    "ood_unseen": "contexts never seen in finetune",
    "ood_style": "sketches instead of photos",
    "novel_train": "14 classes, 4 of them never seen in pretraining",
    "novel_test": "14 classes, 4 of them never seen in pretraining",
}


@dataclass(frozen=True)
class Config:
    """What to evaluate: a model (any name `load_model` accepts) on the world's eval splits."""

    model: Annotated[str, Check(nonblank=True)] = TINY_NAME
    # tag or local file; None = shipped weights (tiny) / random init
    pretrained: Annotated[str | None, Check(nonblank=True)] = None
    world_seed: Annotated[int, Check(ge=0)] = 0
    n_eval: Annotated[int, Check(ge=1)] = 1000  # images per split (indices 0..n_eval-1)
    splits: Annotated[tuple[SplitName, ...], Check(nonempty=True, unique=True)] = EVAL_SPLITS
    seed: Annotated[int, Check(ge=0)] = 0  # seeds random initialisation (open_clip names without weights)
    batch_size: Annotated[int, Check(ge=1)] = 250
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        if isinstance(self.splits, str):
            raise ValueError(f"splits={self.splits!r} must be a sequence of split names, not one string")
        check_fields(self)  # every field against its annotation: types, ranges, known splits
        kit.check_device_field(self)
        check_model(self.model, self.pretrained)  # a known name, weights that exist: before any run

    @classmethod
    def preset(cls, quick: bool = False, **overrides) -> Config:
        """The config with `overrides`; `quick` caps n_eval at 200 images per split."""
        cfg = cls(**overrides)
        return dataclasses.replace(cfg, n_eval=min(cfg.n_eval, QUICK_N_EVAL)) if quick else cfg


@dataclass(kw_only=True)
class Result(kit.Result):
    """Zero-shot accuracy per split, per-class accuracy on heldout, confusion on ood_flipped."""

    model_name: str
    accuracy: dict[str, float]  # split -> top-1 zero-shot accuracy in [0, 1]
    chance: dict[str, float]  # split -> 1 / number of classes the split draws from
    per_class: dict[str, float]  # heldout class name -> accuracy
    confusion: torch.Tensor  # (C, C) counts on ood_flipped, rows = true class, cols = predicted
    confusion_classes: tuple[str, ...]
    reference: dict[str, float] | None  # data/tiny-world-clip/metrics.json, for the shipped tiny model
    reference_n: int | None
    table: list[dict] = field(default_factory=list)  # one row per split
    cached: bool = False

    def confusion_rows(self) -> list[dict]:
        """The confusion matrix as table rows: {"true": class, <predicted class>: count, ...}."""
        return [{"true": t, **{p: int(self.confusion[i, j]) for j, p in enumerate(self.confusion_classes)}}
                for i, t in enumerate(self.confusion_classes)]

    def write(self) -> Path:
        """(Re)write result.json; call again after saving figures so it lists them."""
        self.metrics = {"zero_shot_accuracy": self.accuracy, "chance": self.chance,
                        "reference_zero_shot_accuracy": self.reference, "reference_n": self.reference_n,
                        "model": self.model_name, "cached": self.cached}
        self.tables = {"accuracy_per_split": self.table,
                       "per_class_heldout": [{"class": c, "accuracy": a} for c, a in self.per_class.items()],
                       "confusion_ood_flipped": self.confusion_rows()}
        return super().write()


# ---------------------------------------------------------------------------- model and cache
def build_model(cfg: Config, device: str | torch.device = "cpu") -> ClipBackend:
    """Load `cfg.model`; random initialisation is seeded by `cfg.seed`."""
    torch.manual_seed(cfg.seed)
    return load_model(cfg.model, pretrained=cfg.pretrained, device=device)


CACHE_SKIP = ("device",)  # every other field decides the predictions; the device type is keyed instead
CACHE_VERSION = 2


def cell_cache(cfg: Config, model: ClipBackend, enabled: bool = True) -> kit.CellCache:
    """The predictions' cache: the whole config, the weights and the device type decide them."""
    device = next(model.parameters()).device
    return kit.CellCache(STUDY, cfg, skip=CACHE_SKIP, weights=kit.weights_fingerprint(model), data=device.type,
                         version=CACHE_VERSION, enabled=enabled)


# ---------------------------------------------------------------------------- evaluation
def evaluate_splits(model: ClipBackend, world: World, splits: Sequence[str], n: int, batch_size: int = 250,
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Zero-shot (predictions, targets) per split, each (n,), indices into `world.split_classes(split)`."""
    heads: dict[tuple[str, ...], ImageClassifier] = {}  # one text head per class set, shared by splits
    out = {}
    for split in splits:
        names = world.split_classes(split)
        if names not in heads:
            heads[names] = ImageClassifier(model, model.zero_shot_head(names, zero_shot_templates()))
        label_map = {World.classes.index(c): i for i, c in enumerate(names)}
        out[split] = predict(heads[names], world, split, n, batch_size, label_map=label_map)
    return out


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Counts (C, C): row = true class, column = predicted class."""
    flat = targets.long() * n_classes + preds.long()  # (N,)
    return torch.bincount(flat, minlength=n_classes * n_classes).view(n_classes, n_classes)


def per_class_accuracy(preds: torch.Tensor, targets: torch.Tensor, classnames: Sequence[str]) -> dict[str, float]:
    out = {}
    for k, name in enumerate(classnames):
        sel = targets == k
        out[name] = float((preds[sel] == k).float().mean()) if sel.any() else float("nan")
    return out


def tiny_reference(cfg: Config) -> tuple[dict[str, float] | None, int | None]:
    """The zero-shot numbers data/tiny-world-clip/metrics.json ships with, for the shipped weights."""
    if cfg.model != TINY_NAME or cfg.pretrained is not None or cfg.world_seed != 0:
        return None, None  # other weights or another world: the shipped numbers do not apply
    path = TINY_DIR / "metrics.json"
    if not path.is_file():
        return None, None
    metrics = json.loads(path.read_text())
    n = None
    recipe = TINY_DIR / "recipe.json"
    if recipe.is_file():
        n = json.loads(recipe.read_text()).get("eval_n")
    return {k: float(v) for k, v in metrics.get("zero_shot_accuracy", {}).items()}, n


# ---------------------------------------------------------------------------- run
def run(cfg: Config | None = None, output_dir: str | Path | None = None, model: ClipBackend | None = None,
        use_cache: bool = True) -> Result:
    """Evaluate `cfg.model` zero-shot and write result.json.

    `model`: an already loaded model to evaluate instead of loading `cfg.model` (then the shipped
    tiny-world-clip numbers are not shown next to it).
    """
    cfg = cfg or Config()
    t0 = time.perf_counter()
    out = kit.output_dir(output_dir, STUDY)
    model_given = model is not None
    model = model if model_given else build_model(cfg, kit.device(cfg.device))
    world = World(WorldConfig(seed=cfg.world_seed))
    needed = tuple(dict.fromkeys((*cfg.splits, PER_CLASS_SPLIT, CONFUSION_SPLIT)))
    cache = cell_cache(cfg, model, use_cache)
    file = cache.artefact(kit.Cell("predictions"), "pt")
    preds = kit.load_tensors(file) if use_cache else None  # an unreadable file is set aside and recomputed
    cached = preds is not None
    if not cached:
        preds = evaluate_splits(model, world, needed, cfg.n_eval, cfg.batch_size)
        if use_cache:
            save_atomic(preds, file)
    name = model.name if cfg.pretrained is None or model_given else f"{model.name} ({cfg.pretrained})"
    reference = (None, None) if model_given else tiny_reference(cfg)
    result = _summarise(cfg, name, world, preds, out, reference)
    result.cached = cached
    result.timings = {"total": round(time.perf_counter() - t0, 2)}
    result.write()
    return result


def output_folder(path: str | Path | None = None) -> Path:
    """The study's output folder: `path` if given, else a new runs/adhoc/world_and_model-<time>/."""
    return kit.output_dir(path, STUDY)


def _summarise(cfg: Config, model_name: str, world: World, preds: dict, out: Path,
               reference: tuple[dict[str, float] | None, int | None] = (None, None)) -> Result:
    acc = {s: round(float((p == t).float().mean()), 4) for s, (p, t) in ((s, preds[s]) for s in cfg.splits)}
    chance = {s: round(1 / len(world.split_classes(s)), 4) for s in cfg.splits}
    heldout_names = world.split_classes(PER_CLASS_SPLIT)
    per_class = {k: round(v, 4) for k, v in per_class_accuracy(*preds[PER_CLASS_SPLIT], heldout_names).items()}
    conf_names = world.split_classes(CONFUSION_SPLIT)
    conf = confusion_matrix(*preds[CONFUSION_SPLIT], len(conf_names))
    reference, ref_n = reference
    table = [{"split": s, "accuracy": acc[s], "chance": chance[s], "n": cfg.n_eval,
              "reference": (reference or {}).get(s), "what": SPLIT_NOTES.get(s, "")} for s in cfg.splits]
    result = Result(study=STUDY, config=cfg, output_dir=out, model_name=model_name, accuracy=acc, chance=chance,
                    per_class=per_class, confusion=conf, confusion_classes=conf_names, reference=reference,
                    reference_n=ref_n, table=table)
    heldout_acc = float((preds[PER_CLASS_SPLIT][0] == preds[PER_CLASS_SPLIT][1]).float().mean())
    result.findings = findings(result, heldout_acc)
    result.headline = headline(result, heldout_acc)
    result.main_table = "accuracy_per_split"
    result.percent = ("accuracy", "chance", "reference")
    return result


def _se(p: float, n: int) -> float:
    """Binomial standard error of an accuracy p measured on n images."""
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def findings(r: Result, heldout_acc: float) -> str:
    """One honest paragraph, written from the numbers (never from what we hoped to see)."""
    return " ".join(finding_sentences(r, heldout_acc))


def headline(r: Result, heldout_acc: float) -> str:
    """The report's first screen: the accuracies and what the context shift alone costs (no paper to test:
    this study describes the world and the model every later study starts from)."""
    return " ".join(finding_sentences(r, heldout_acc)[:2])


def finding_sentences(r: Result, heldout_acc: float) -> list[str]:
    """The findings, sentence by sentence, most important first."""
    n = r.config.n_eval
    accs = ", ".join(f"{s} {a:.3f}" for s, a in r.accuracy.items())
    chance = max(r.chance.values())
    text = [f"{r.model_name} zero-shot accuracy on {n} images per split: {accs} (chance {chance:.3f})."]
    above = [s for s, a in r.accuracy.items() if a > r.chance[s] + 3 * _se(r.chance[s], n)]
    if not above:
        below = [f"{s} {a:.3f}" for s, a in r.accuracy.items() if a < r.chance[s] - 3 * _se(r.chance[s], n)]
        text.append("No split is above chance by 3 standard errors: this model has not learned the world "
                    "(expected of a random initialisation, e.g. an open_clip name without weights offline), "
                    "so the differences between splits say nothing about robustness.")
        if below:
            text.append(f"Splits below chance ({', '.join(below)}) are no finding either: an untrained model "
                        "predicts a few classes whatever the object, and how often those happen to be right "
                        "depends on the split.")
        return text
    flipped = float(r.confusion.diag().sum() / r.confusion.sum())
    gap = heldout_acc - flipped  # > 0: ood_flipped is harder
    se2 = 2 * math.hypot(_se(heldout_acc, n), _se(flipped, n))
    if abs(gap) < se2:
        text.append(f"ood_flipped ({flipped:.3f}) is within noise of heldout ({heldout_acc:.3f}): "
                    f"{100 * gap:+.1f} points, 2 s.e. = {100 * se2:.1f}.")
    else:
        text.append(f"ood_flipped ({flipped:.3f}) is {100 * abs(gap):.1f} points {'below' if gap > 0 else 'above'} "
                    f"heldout ({heldout_acc:.3f}; 2 s.e. = {100 * se2:.1f}).")
    if "id_test" in r.accuracy:
        text.append(f"Against id_test (same seen contexts, tie kept: {r.accuracy['id_test']:.3f}) the gap is "
                    f"{100 * (r.accuracy['id_test'] - flipped):+.1f} points.")
    text.append("The tie lives only in finetune, which this zero-shot model never trained on, so these gaps "
                "measure a shift of context alone, not a learned shortcut.")
    worst = min(r.per_class, key=r.per_class.get)
    best = max(r.per_class, key=r.per_class.get)
    if r.per_class[worst] < r.per_class[best]:
        text.append(f"On heldout the hardest class is {worst} ({r.per_class[worst]:.2f}), the easiest {best} "
                    f"({r.per_class[best]:.2f}).")
    off = r.confusion.clone().fill_diagonal_(0)
    if off.sum() > 0:
        i, j = divmod(int(off.argmax()), off.shape[1])
        text.append(f"The commonest ood_flipped confusion is {r.confusion_classes[i]} -> "
                    f"{r.confusion_classes[j]} ({int(off[i, j])} of {int(r.confusion[i].sum())}).")
    for s in ("ood_style", "ood_unseen"):
        if s in r.accuracy and r.accuracy[s] < heldout_acc - 2 * _se(heldout_acc, n):
            text.append(f"{s} costs {100 * (heldout_acc - r.accuracy[s]):.1f} points against heldout.")
    if r.reference:
        diffs = {s: r.accuracy[s] - r.reference[s] for s in r.accuracy if s in r.reference}
        if diffs:
            s_max = max(diffs, key=lambda s: abs(diffs[s]))
            text.append(f"Against data/tiny-world-clip/metrics.json (n={r.reference_n}) the largest difference "
                        f"is {100 * diffs[s_max]:+.1f} points on {s_max} (2 s.e. of this run: "
                        f"{200 * _se(r.accuracy[s_max], n):.1f}).")
    return text
