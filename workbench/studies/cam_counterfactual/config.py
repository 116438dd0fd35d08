"""Study 01's knobs: the model, the methods and seeds, the optimisation, the masks, the data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Mapping

from workbench.checks import Check, check_fields
from workbench.methods.robust_ft import METHOD_NAMES, FineTuneConfig, MaskSpec
from workbench.models import TINY_NAME, check_model

from .. import kit

# Fields that choose *which* cells run or which weights are kept, not what a cell computes
# (`device` is replaced in the key by the device type it resolves to).
CACHE_SKIP = ("claim_seeds", "methods", "seeds", "save_models", "device")
QUICK = dict(claim_seeds=(), seeds=(0,), steps=4, batch_size=16, n_train=64, n_eval=64, wise_alphas=(0.0, 0.5, 1.0))


@dataclass(frozen=True)
class Config:
    """The study's knobs; defaults fit the whole notebook in ~10 minutes on 2 CPU cores."""

    model: Annotated[str, Check(nonblank=True)] = TINY_NAME
    # tag or local file; None = shipped weights (tiny) / random init
    pretrained: Annotated[str | None, Check(nonblank=True)] = None
    methods: tuple[str, ...] | str = "all"  # ids of workbench.methods.robust_ft; "all": every one
    seeds: tuple[int, ...] = (0, 1)  # every method's cells
    # the cells the headline claims compare also run on these seeds (8 in all: seeds where the claims are;
    # the seed plan in result.json's claims_family says which cells got how many); () in quick mode
    claim_seeds: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    steps: Annotated[int, Check(ge=1)] = 30
    batch_size: Annotated[int, Check(ge=2, note="fills copy patches from other images")] = 64
    # Learning rate, the same for every method (AdamW, cosine, warm-up, grad clip 1.0).
    # evidence: EVIDENCE.md#lr
    lr: Annotated[float, Check(gt=0)] = 3e-4
    weight_decay: Annotated[float, Check(ge=0)] = 0.1
    warmup: Annotated[float, Check(ge=0, lt=1, note="a fraction of the steps")] = 0.05
    w: Annotated[float, Check(ge=0)] = 30.0  # distillation weight (paper default)
    # object mask = CAM > threshold (paper headline)
    threshold: Annotated[float, Check(gt=0, lt=1, note="CAMs are normalised to [0, 1]")] = 0.3
    mask_kind: str = "object"
    fill: str = "single"
    cam_method: str = "rollout"  # the paper's code; "gradcam" is the cheaper option
    p_random: Annotated[float, Check(ge=0, le=1, note="random masks: share of patches")] = 0.5
    # share of each batch distilled (1 = the paper)
    distill_fraction: Annotated[float, Check(gt=0, le=1)] = 1.0
    # world: distinct training images (finetune split, indices 0..n_train-1)
    n_train: Annotated[int, Check(ge=1)] = 2048
    # test images per split; 1200 so that the test items' part of the headline claims' intervals is no larger
    # than the seeds' part
    # evidence: EVIDENCE.md#n_eval
    n_eval: Annotated[int, Check(ge=1)] = 1200
    wise_alphas: Annotated[tuple[float, ...], Check(ge=0, le=1)] = (0.0, 0.25, 0.5, 0.75, 1.0)
    wise_alpha: Annotated[float, Check(ge=0, le=1)] = 0.5  # the WiSE-FT row of the table
    world_seed: Annotated[int, Check(ge=0)] = 0
    # world: P(class on its own context) in finetune and id_test
    p_tie: Annotated[float, Check(ge=0, le=1, note="a probability")] = 0.95
    # The fine-tuning domain: contexts at this contrast (pretraining saw 0.35).
    # evidence: EVIDENCE.md#backdrop_contrast
    backdrop_contrast: Annotated[float, Check(ge=0, le=1)] = 0.7
    # ImageFolder scale path: <train_dir>/<class>/<image>
    train_dir: Annotated[str | None, Check(nonblank=True)] = None
    id_test_dir: Annotated[str | None, Check(nonblank=True)] = None
    ood_dirs: Mapping[str, str] | None = None  # name -> folder (or a list of folders)
    # keep these weights (first seed) for the notebook
    save_models: Annotated[tuple[str, ...], Check(unique=True)] = ("full_ft", "mask_fd")
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        kit.check_seeds(self, ("seeds", "claim_seeds"))
        for name in ("methods", "seeds", "wise_alphas", "save_models"):
            value = getattr(self, name)
            if name == "methods" and value == "all":
                continue
            if isinstance(value, (str, int, float)):
                raise ValueError(f"{name}={value!r} must be a sequence (e.g. ({value!r},))")
            object.__setattr__(self, name, tuple(value))
        for name in ("methods", "save_models"):
            ids = getattr(self, name)
            unknown = [m for m in (METHOD_NAMES if ids == "all" else ids) if m not in METHOD_NAMES]
            if unknown:
                raise ValueError(f"{name}={ids!r}: unknown {', '.join(map(repr, unknown))}; accepted: "
                                 f"{', '.join(METHOD_NAMES)}")
        if not self.methods or not self.seeds:
            raise ValueError(f"methods={self.methods!r} and seeds={self.seeds!r} must not be empty")
        self._check_folders()
        kit.check_config(self)  # every field against its annotation (after the folders are normalised)
        if not all(0.0 <= a <= 1.0 for a in (*self.wise_alphas, self.wise_alpha)):
            raise ValueError(f"wise_alphas={self.wise_alphas!r}, wise_alpha={self.wise_alpha!r}: alphas are in [0, 1]")
        check_fields(self)  # the ranges each field declares
        kit.check_device_field(self)
        check_model(self.model, self.pretrained)  # a known name, weights that exist: before any run
        self._check_mask()
        object.__setattr__(self, "wise_alphas", tuple(sorted(set(self.wise_alphas) | {0.0, 1.0, self.wise_alpha})))

    def _check_mask(self) -> None:
        MaskSpec(self.mask_kind, self.fill, self.threshold, self.p_random, self.cam_method)  # names a bad value

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
    def preset(cls, quick: bool = False, **overrides) -> Config:
        """`quick`: one seed, a few steps, small pools (every method still runs), for tests.
        None values keep the default (as a notebook's parameters cell passes them)."""
        return kit.preset(cls, quick, QUICK, overrides)

    def finetune_config(self, seed: int) -> FineTuneConfig:
        mask = MaskSpec(self.mask_kind, self.fill, self.threshold, self.p_random, self.cam_method)
        return FineTuneConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, warmup=self.warmup,
                              w=self.w, mask=mask, distill_fraction=self.distill_fraction, seed=seed)
