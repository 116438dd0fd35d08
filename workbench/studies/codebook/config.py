"""Study 03's knobs: the event world, the frozen encoders, which methods at which sizes and seeds, how long to train."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from workbench.checks import Check, check_fields
from workbench.models import TINY_NAME, check_model
from workbench.world import SplitName

from .. import kit

# Fields that choose *which* cells run (or what is kept for the figures), not what a cell computes.
CACHE_SKIP = ("claim_seeds", "seeds", "methods", "codebook_sizes", "checkpoints", "device")
QUICK = dict(claim_seeds=(),
             n_train=120, n_val=30, n_test=60, seeds=(0, 1), train_steps=30, head_steps=60, codebook_sizes=(16,),
             methods=("unicode", "plain_vq", "no_cpc"), checkpoints=3)
MODALITY_NAMES = ("video", "audio", "text")


@dataclass(frozen=True)
class Config:
    """The study. Defaults fit the notebook in ~10 minutes on 2 CPU cores (features cached after the first run)."""

    model: Annotated[str, Check(nonblank=True)] = TINY_NAME
    # weights folder/file/tag; None = the shipped weights (tiny)
    pretrained: Annotated[str | None, Check(nonblank=True)] = None
    world_seed: Annotated[int, Check(ge=0)] = 0
    split: SplitName = "heldout"  # the world split whose scenes the sequences are drawn from (10 classes)
    # the event world (workbench.world.events.EventConfig)
    steps: int = 10
    p_silent: float = 0.15
    p_offscreen: float = 0.15
    p_background: float = 0.1
    # sequences: train from index 0, validation from 1,000,000, test from 2,000,000 (disjoint)
    n_train: int = 600
    n_val: int = 150
    n_test: int = 300
    # frozen encoders: "embedding" (the image tower's projected embedding, (N, T, 128)) or "grid"
    # (its last block's patch tokens, (N, T, g, g, 128), pooled to `grid` x `grid` if given)
    video: str = "embedding"
    grid: Annotated[int, Check(ge=1)] | None = None
    bands: int = 64  # log band energies of each step's sound
    modalities: tuple[str, ...] = MODALITY_NAMES
    # the codebook model (workbench.methods.codebook.CodebookConfig; the rest at the authors' values)
    codes: Annotated[int, Check(ge=2)] = 400
    dim: int = 64
    layers: int = 1
    heads: int = 4
    encoder: Literal["transformer", "mlp"] = "transformer"
    # a code unused this many batches is reset (the authors' setting, scaled to the length of our run)
    # evidence: EVIDENCE.md#reset_after
    reset_after: Annotated[int, Check(ge=1)] = 8
    train_steps: int = 80
    # sequences per training batch (smaller than the authors', for the CPU budget)
    # evidence: EVIDENCE.md#batch_size
    batch_size: int = 40
    lr: Annotated[float, Check(gt=0)] = 4e-4
    head_steps: int = 100
    head_lr: Annotated[float, Check(gt=0)] = 1e-3
    seeds: tuple[int, ...] = (0, 1)  # every method's cells
    # the cells the headline claims compare also run on these seeds (8 in all: seeds where the claims are;
    # the seed plan in result.json's claims_family says which cells got how many); () in quick mode
    claim_seeds: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    methods: tuple[str, ...] | str = "all"  # ids of the study's registry; "all": every registered method
    codebook_sizes: tuple[int, ...] = (16, 64, 1024)  # Uni-Code also at these sizes (besides `codes`)
    checkpoints: int = 6  # training checkpoints kept (for the figures and the explorer) of the first seed
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        kit.check_seeds(self, ("seeds", "claim_seeds"))
        kit.check_config(self)  # every field against its annotation: types, finite floats
        for name in ('codebook_sizes',):
            values = tuple(getattr(self, name))
            if len(set(values)) != len(values):
                raise ValueError(f"{name}={values!r}: a value is given twice; each runs once")
        kit.tuple_fields(self, ("seeds", "codebook_sizes", "modalities"))
        if self.methods != "all":
            kit.tuple_fields(self, ("methods",))
        if not self.methods:
            raise ValueError("methods=() : give at least one method id, or 'all'")
        kit.check_methods("codebook", self.methods)
        if not self.seeds:
            raise ValueError("seeds=() : give at least one seed")
        bad = [m for m in self.modalities if m not in MODALITY_NAMES]
        if bad or len(self.modalities) < 2 or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities={self.modalities!r}: accepted two or three distinct of "
                             f"{', '.join(MODALITY_NAMES)}")
        for name in ("codes", "dim", "n_train", "n_val", "n_test", "batch_size", "head_steps", "checkpoints",
                     "layers", "heads", "bands"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be a positive integer")
        if self.train_steps < 0:
            raise ValueError(f"train_steps={self.train_steps!r} must be >= 0")
        bad = [k for k in self.codebook_sizes if isinstance(k, bool) or not isinstance(k, int) or k < 2]
        if bad:
            raise ValueError(f"codebook_sizes={self.codebook_sizes!r}: sizes are integers >= 2, got {bad}")
        if self.video not in ("embedding", "grid"):
            raise ValueError(f"video={self.video!r}; accepted: 'embedding', 'grid'")
        self.event_config()  # the event world's own checks (rates in [0, 1], ...)
        check_fields(self)  # the ranges each field declares
        kit.check_device_field(self)
        check_model(self.model, self.pretrained)  # a known name, weights that exist: before any run
        self.codebook_config()  # the codebook model's own checks (dim a multiple of heads, ...)

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> Config:
        """The config with `overrides` (None keeps the default, as a notebook's parameters cell
        passes them); `quick` shrinks it to a smoke run (fewer sequences, steps, methods and sizes)."""
        return kit.preset(cls, quick, QUICK, overrides)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The codebook sizes a size-swept method runs at: `codes` first, then the other `codebook_sizes`."""
        return (self.codes, *(k for k in self.codebook_sizes if k != self.codes))

    def codebook_config(self, codes: int | None = None):
        """The CodebookConfig every method starts from (workbench.studies.codebook.methods adds its own fields)."""
        from workbench.methods.codebook import CodebookConfig

        return CodebookConfig(dim=self.dim, codes=self.codes if codes is None else codes, specific_dim=self.dim,
                              layers=self.layers, heads=self.heads, encoder=self.encoder, reset_after=self.reset_after)

    def event_config(self):
        from workbench.world.events import EventConfig

        return EventConfig(steps=self.steps, p_silent=self.p_silent, p_offscreen=self.p_offscreen,
                           p_background=self.p_background, max_length=min(8, self.steps),
                           min_length=min(3, self.steps))
