"""Study 02's knobs: which model, which methods at which ranks and seeds, how long to train, how to measure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from workbench.checks import Check, check_fields
from workbench.methods.mode_approx.config import placement_targets
from workbench.models import TINY_NAME, check_model
from workbench.world import SplitName

from .. import kit

# Fields that choose *which* cells run (or which cell's artefact is kept), not what a cell computes.
# `device` is replaced in the key by the device type it resolves to.
CACHE_SKIP = ("claim_seeds", "ranks", "seeds", "methods", "ablation_ranks", "keep_rank", "real_scale", "device")
QUICK = dict(claim_seeds=(),
             ranks=(2, 8), seeds=(0,), ablation_ranks=(8,), steps=4, batch_size=16, n_eval=48, n_heldout=40,
             n_val=32, eval_every=2, real_scale="formula")


@dataclass(frozen=True)
class Config:
    """The sweep. Defaults fit the notebook in ~10 minutes on 2 CPU cores."""

    model: Annotated[str, Check(nonblank=True)] = TINY_NAME
    # weights folder/file/tag; None = the shipped weights (tiny)
    pretrained: Annotated[str | None, Check(nonblank=True)] = None
    world_seed: Annotated[int, Check(ge=0)] = 0
    ranks: tuple[int, ...] = (2, 8, 32)  # mode-approx R (and LoRA at the nearest count to each)
    seeds: tuple[int, ...] = (0, 1)  # every method's cells
    # the cells the headline claims compare also run on these seeds (8 in all: seeds where the claims are;
    # the seed plan in result.json's claims_family says which cells got how many); () in quick mode
    claim_seeds: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    # ids of the study's registry; "all": every method not marked optional (the opt-in ones run by id, among them
    # `lora_same_sites`, LoRA on mode approximation's own modules, and with it the AU-2.sites claim)
    # evidence: EVIDENCE.md#methods
    methods: tuple[str, ...] | str = "all"
    ablation_ranks: tuple[int, ...] = (8,)  # R of the CP / sharing-off / gated / context cells
    # Training steps per cell (the cosine schedule decays over them); steps=240 is the longer run.
    # evidence: EVIDENCE.md#steps
    steps: Annotated[int, Check(ge=0)] = 120
    batch_size: Annotated[int, Check(ge=1)] = 32
    # One learning rate for every adapter method, so none is tuned against another.
    # evidence: EVIDENCE.md#lr
    lr: Annotated[float, Check(gt=0)] = 3e-3  # mode approx, LoRA, LoHa, LoKr, VeRA, BitFit
    # Full fine-tuning's learning rate.
    # evidence: EVIDENCE.md#full_ft_lr
    full_ft_lr: Annotated[float, Check(gt=0)] = 2e-4
    probe_lr: Annotated[float, Check(gt=0)] = 1e-2
    weight_decay: Annotated[float, Check(ge=0)] = 0.05  # the paper's AdamW weight decay
    warmup: Annotated[float, Check(ge=0, lt=1, note="a fraction of the steps")] = 0.1
    # mode-approx dropout (the authors' 0.1); LoRA runs at 0 except in `lora_dropout`
    dropout: Annotated[float, Check(ge=0, lt=1)] = 0.1
    # Where mode approximation (and `lora_same_sites`) puts updates: "all" (default) -- every attention and MLP
    # matrix of both towers; "paper" -- the authors' code: image attention + MLP, text q, k, v only (in BLIP those
    # include the text encoder's image cross-attention, which a dual encoder has not). "all" stays the default: the
    # other settings (steps, lr) were chosen with it, and on the validation slice the paper's placement scored within
    # a point of it at every R (2 seeds; the seeds themselves differ by up to 4 points).
    # evidence: EVIDENCE.md#placement
    placement: Literal["all", "paper"] = "all"
    # LoRA scaled by alpha/sqrt(r), alpha 1 (rank-stabilised LoRA), not by alpha/r with alpha = r
    # evidence: EVIDENCE.md#lora_rslora
    lora_rslora: bool = True
    loha_rank: Annotated[int, Check(ge=1)] = 2
    lokr_rank: Annotated[int, Check(ge=1)] = 4
    vera_rank: Annotated[int, Check(ge=1)] = 32
    # The task: heldout photos (every caption word known from pretraining) at `backdrop_contrast`
    # evidence: EVIDENCE.md#train_split
    train_split: SplitName = "heldout"
    # evidence: EVIDENCE.md#test_split
    test_split: SplitName = "heldout"
    heldout_split: SplitName = "heldout"  # measured in the pretraining world (its own contrast): what adapting costs
    # evidence: EVIDENCE.md#backdrop_contrast
    backdrop_contrast: Annotated[float, Check(ge=0, le=1)] = 1.0  # the task world's backdrops (pretraining saw 0.35)
    # test pairs (retrieval set, classification images): indices 0 .. n_eval - 1; retrieval ranks within
    # consecutive galleries of `gallery` pairs (the task's difficulty; more pairs, less item noise)
    # evidence: EVIDENCE.md#n_eval
    n_eval: Annotated[int, Check(ge=1)] = 1000
    gallery: Annotated[int, Check(ge=2, note="recall@1 needs at least 2 candidates")] = 250
    n_heldout: Annotated[int, Check(ge=1)] = 200
    # Disjoint index ranges of one split: test [0, n_eval), validation [val_offset, +n_val), training
    # from train_offset (each seed its own run of samples). Settings were chosen on validation only.
    val_offset: Annotated[int, Check(ge=0)] = 1_000_000
    n_val: Annotated[int, Check(ge=1)] = 160
    train_offset: Annotated[int, Check(ge=0)] = 2_000_000
    # steps between validation looks (the convergence curve); 0 = none
    eval_every: Annotated[int, Check(ge=0, note="0 = none")] = 15
    # the mode-approx cell (R, first seed) whose adapter is kept for the factor figure
    keep_rank: Annotated[int, Check(ge=1)] = 8
    # "counted" (build ViT-B-32 and a BLIP-base-sized model), "formula", "off"
    real_scale: Literal["counted", "formula", "off"] = "counted"
    model_seed: Annotated[int, Check(ge=0)] = 0  # seeds random initialisation when the model has no weights
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        kit.check_seeds(self, ("seeds", "claim_seeds"))
        kit.check_config(self)  # every field against its annotation: types, finite floats
        for name in ('ranks', 'ablation_ranks'):
            values = tuple(getattr(self, name))
            if len(set(values)) != len(values):
                raise ValueError(f"{name}={values!r}: a value is given twice; each runs once")
        kit.tuple_fields(self, ("ranks", "seeds", "ablation_ranks") + (() if self.methods == "all" else ("methods",)))
        if not self.methods:
            raise ValueError("methods=() : give at least one method id, or 'all'")
        kit.check_methods("cp_rank_ablation", self.methods)
        for name in ("ranks", "ablation_ranks"):
            bad = [r for r in getattr(self, name) if not isinstance(r, int) or r < 1]
            if bad:
                raise ValueError(f"{name}={getattr(self, name)!r}: ranks are positive integers, got {bad}")
        if not self.seeds:
            raise ValueError("seeds=() : give at least one seed")
        check_fields(self)  # the ranges each field declares
        kit.check_device_field(self)
        check_model(self.model, self.pretrained)  # a known name, weights that exist: before any run
        if not (self.n_eval <= self.val_offset and self.val_offset + self.n_val <= self.train_offset):
            raise ValueError(f"index ranges overlap: test [0, {self.n_eval}), validation [{self.val_offset}, "
                             f"{self.val_offset + self.n_val}), training from {self.train_offset}; accepted: "
                             "n_eval <= val_offset and val_offset + n_val <= train_offset")
        placement_targets(self.placement)  # ValueError naming the accepted placements

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> Config:
        """The config with `overrides` (None keeps the default, as a notebook's parameters cell
        passes them); `quick` shrinks it to a smoke run (2 ranks, 1 seed, 4 steps)."""
        return kit.preset(cls, quick, QUICK, overrides)
