"""Study 04's knobs: which shared depths k, seeds, how long to train each multi-task model, what to measure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.models import TINY_NAME

from .. import kit

# Fields that choose *which* cells run, not what a cell computes (`device` enters the key as its type).
CACHE_SKIP = ("claim_seeds", "seeds", "methods", "shared_layers", "temperatures", "device", "show_samples")
QUICK = dict(claim_seeds=(), shared_layers=(0, 2), seeds=(0, 1), steps=5, batch_size=4, n_eval=12, n_probe=24, frames=3,
             direction_steps=4, temperatures=(1.0, 0.01), temperature_steps=2, shift_lambdas=(-0.5, 0.0, 0.5, 1.0),
             flops_batch=2)
TASKS = ("image_retrieval", "video_retrieval", "captioning", "qa", "classification")


@dataclass(frozen=True)
class Config:
    """The sweep. Defaults are sized for the notebook's 10 minutes on 2 CPU cores."""

    model: str = TINY_NAME
    pretrained: str | None = None  # weights folder/file/tag; None = the shipped tiny-world-clip
    world_seed: int = 0
    methods: tuple[str, ...] | str = "all"  # ids of the study's registry; "all": every one
    shared_layers: tuple[int | str, ...] = (0, 1, 2, "all")  # k: universal (shared) text layers
    default_k: int | str = 2  # the paper's 2 universal layers: k of the temporal-off, path and gap cells
    seeds: tuple[int, ...] = (0, 1)  # every method's cells
    # the cells the headline claims compare also run on these seeds (8 in all: seeds where the claims are;
    # the seed plan in result.json's claims_family says which cells got how many); () in quick mode
    claim_seeds: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    tasks: tuple[str, ...] = TASKS  # the multi-task mixture trained (one batch of each per step)
    # Optimisation: one setting for every k and method: AdamW, towers at a fine-tuning lr, new modules
    # 30x. `steps`: training steps of each multi-task model.
    # evidence: EVIDENCE.md#steps
    steps: int = 160
    # Items per task in each step's batch (reversed clips in the batches: tried and not adopted).
    # evidence: EVIDENCE.md#batch_size
    batch_size: int = 8
    # evidence: EVIDENCE.md#lr
    lr: float = 1e-4  # pretrained towers
    # evidence: EVIDENCE.md#new_lr
    new_lr: float = 3e-3  # modules that start from scratch (latents, temporal, fusion, decoder, heads)
    weight_decay: float = 0.05
    frames: int = 4
    # The direction cells: the vision encoder alone trained on direction (a 4-way head).
    # `direction_steps`: training steps of each direction cell.
    # evidence: EVIDENCE.md#direction_steps
    direction_steps: int = 80
    # evidence: EVIDENCE.md#direction_new_lr
    direction_new_lr: float = 1e-2  # the temporal modules and the head
    # evidence: EVIDENCE.md#direction_frozen
    direction_frozen: bool = True  # tiny-world-clip's own weights frozen (else trained at lr)
    latents: int = 16  # learnable latent queries (the paper's 50, at workbench scale)
    train_split: str = "novel_train"
    test_split: str = "novel_test"
    n_eval: int = 48  # test items per task (the same items for every cell: pairs form by item)
    n_probe: int = 96  # train-split clips (and their reversals) the linear direction probe fits on
    flops_batch: int = 4  # items per FLOP count / timing of the module-selection table
    # "Mind the Gap": brief contrastive fine-tuning of tiny-world-clip at fixed temperatures
    temperatures: tuple[float, ...] = (1.0, 0.1, 0.03, 0.01)
    temperature_steps: int = 15
    temperature_lr: float = 1e-4
    shift_lambdas: tuple[float, ...] = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
    shift_temperature: float = 0.01  # the loss of the shift curve (CLIP's learned 1/100)
    show_samples: int = 4  # samples kept for the explorer
    model_seed: int = 0  # seeds random initialisation when the model has no weights
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        kit.check_seeds(self, ("seeds", "claim_seeds"))
        kit.check_config(self)  # every field against its annotation: types, finite floats
        kit.tuple_fields(self, ("seeds", "shared_layers", "tasks", "temperatures", "shift_lambdas")
                         + (() if self.methods == "all" else ("methods",)), scalars=(str, int, float))
        if not self.methods:
            raise ValueError("methods=() : give at least one method id, or 'all'")
        kit.check_methods("module_selection", self.methods)
        if not self.seeds:
            raise ValueError("seeds=() : give at least one seed")
        for k in (*self.shared_layers, self.default_k):
            if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
                raise ValueError(f"shared layers k={k!r}; accepted: an integer >= 0 (at most the text depth) "
                                 "or 'all'")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks={self.tasks!r}: unknown {bad}; accepted: {', '.join(TASKS)}")
        if any(t <= 0 for t in self.temperatures) or self.shift_temperature <= 0:
            raise ValueError(f"temperatures={self.temperatures!r}, shift_temperature={self.shift_temperature!r}: "
                             "temperatures are > 0")
        for name in ("lr", "new_lr", "direction_new_lr", "temperature_lr"):  # its own param groups skip torch's check
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; accepted: a learning rate > 0")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r}; accepted: >= 0")
        dupes = [name for name in ("shared_layers", "tasks", "temperatures")
                 if len(set(getattr(self, name))) != len(getattr(self, name))]
        if dupes:
            raise ValueError(f"{dupes[0]}={getattr(self, dupes[0])!r}: a value is given twice; each runs once")
        for name in ("batch_size", "n_eval", "latents", "flops_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("steps", "direction_steps", "temperature_steps", "show_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.frames < 2:
            raise ValueError(f"frames={self.frames!r}: clips need at least 2 frames (the temporal module "
                             "convolves over time)")
        if self.n_eval < 2:
            raise ValueError(f"n_eval={self.n_eval!r}: retrieval and gap metrics need at least 2 items")

    @property
    def default_ks(self) -> tuple[int | str, ...]:
        """The paper's k alone: the setting of the cells that run only there (temporal off)."""
        return (self.default_k,)

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> Config:
        """The config with `overrides` (None keeps the default); `quick` shrinks it to a smoke run."""
        return kit.preset(cls, quick, QUICK, overrides)
