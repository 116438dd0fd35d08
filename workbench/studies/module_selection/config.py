"""Study 04's knobs: which shared depths k, seeds, how long to train each multi-task model, what to measure."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from workbench.checks import Check, check_fields
from workbench.models import TINY_NAME, check_model
from workbench.world import EVAL_SPLITS, SplitName

from .. import kit

# Fields that choose *which* cells run, not what a cell computes (`device` enters the key as its type).
CACHE_SKIP = ("claim_seeds", "seeds", "methods", "shared_layers", "unshared_layers", "temperatures", "device",
              "show_samples")
QUICK = dict(claim_seeds=(), shared_layers=(0, 2), seeds=(0, 1), steps=5, batch_size=4, n_eval=12, n_probe=24, frames=3,
             direction_steps=4, temperatures=(1.0, 0.01), temperature_steps=2, shift_lambdas=(-0.5, 0.0, 0.5, 1.0),
             flops_batch=2)
TRAINING_SPLITS = ("pretrain", "finetune", "novel_train")  # what tiny-world-clip and the cells train on
TASKS = ("image_retrieval", "video_retrieval", "captioning", "qa", "classification")
QA_SCORINGS = ("head", "decoder_rank")


@dataclass(frozen=True)
class Config:
    """The sweep. Defaults are sized for the notebook's 10 minutes on 2 CPU cores."""

    model: Annotated[str, Check(nonblank=True)] = TINY_NAME
    # weights folder/file/tag; None = the shipped tiny-world-clip
    pretrained: Annotated[str | None, Check(nonblank=True)] = None
    world_seed: Annotated[int, Check(ge=0)] = 0
    methods: tuple[str, ...] | str = "all"  # ids of the study's registry; "all": every one
    # k: universal (shared) text layers; 1 and "all" (MP-1) are left out by default for the budget:
    # -p shared_layers "(0, 1, 2, 'all')" runs the whole sweep
    # evidence: EVIDENCE.md#shared_layers
    shared_layers: tuple[int | str, ...] = (0, 2)
    default_k: int | str = 2  # the paper's 2 universal layers: k of the temporal-off, path and gap cells
    # k of the capacity-matched control (universal layers as unshared copies of the text blocks; at k = 0
    # there is nothing to copy: the control is modular@0). None: default_k alone, the k the claims compare
    # (a cell costs what a modular cell does, about 23 s at these defaults: every k > 0 would add 6 cells);
    # e.g. (1, 2, "all") puts the control beside every k of the sweep.
    # evidence: EVIDENCE.md#unshared_layers
    unshared_layers: tuple[int | str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1)  # every method's cells
    # the cells the headline claims compare also run on these seeds (4 in all: seeds where the claims are;
    # MG-2's cheap cells get 8, as that claim asks: `Claim(seeds=8)`; the seed plan in
    # result.json's claims_family says which cells got how many); () in quick mode
    # evidence: EVIDENCE.md#claim_seeds
    claim_seeds: tuple[int, ...] = (2, 3)
    tasks: tuple[str, ...] = TASKS  # the multi-task mixture trained (one task's batch per step)
    # steps of each task in every cycle of the mixture, in TASKS' order (image and video retrieval, captioning,
    # QA, classification; a task left out of `tasks` skips its entry); None: one step of each in turn
    # evidence: EVIDENCE.md#task_weights
    task_weights: tuple[int, ...] | None = (1, 1, 4, 4, 1)
    # AdamW's fused CPU/GPU kernel (one pass over all tensors) instead of the per-tensor foreach one
    # evidence: EVIDENCE.md#fused_adamw
    fused_adamw: bool = True
    # Optimisation: one setting for every k and method: AdamW, towers at a fine-tuning lr, new modules
    # 30x. `steps`: training steps of each multi-task model.
    # evidence: EVIDENCE.md#steps
    steps: int = 260
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
    direction_steps: int = 120
    # evidence: EVIDENCE.md#direction_new_lr
    direction_new_lr: float = 1e-2  # the temporal modules and the head
    # evidence: EVIDENCE.md#direction_frozen
    direction_frozen: bool = True  # tiny-world-clip's own weights frozen (else trained at lr)
    latents: int = 16  # learnable latent queries (the paper's 50, at workbench scale)
    # clips keep every frame's tokens for the universal layers, decoder and QA (mPLUG-2) instead of their
    # time average; the temporal modules update the CLS token too (True) or patch tokens only (mPLUG-2)
    # evidence: EVIDENCE.md#frame_tokens
    frame_tokens: bool = False
    # evidence: EVIDENCE.md#temporal_cls
    temporal_cls: bool = True
    # QA answers: "head" (a classifier over the answers on the decoder's first state, trained by
    # cross-entropy) or "decoder_rank" (the decoder trained to write the answer and the candidate answers
    # ranked by its log-likelihood, as mPLUG-2's authors score answers)
    # evidence: EVIDENCE.md#qa_scoring
    qa_scoring: str = "decoder_rank"
    train_split: SplitName = "novel_train"
    test_split: SplitName = "novel_test"
    # test items per task (the same items for every cell: pairs form by item); 144 so that the test items'
    # share of a paired interval is not the larger one for accuracies of 0/1 items
    # evidence: EVIDENCE.md#n_eval
    n_eval: Annotated[int, Check(ge=2, note="retrieval and gap metrics need at least 2 items")] = 144
    # train-split clips (and their reversals) the linear direction probe fits on
    n_probe: Annotated[int, Check(ge=1)] = 96
    flops_batch: int = 4  # items per FLOP count / timing of the module-selection table
    # test items per task of the module-selection (path) table: the first path_items of the n_eval items
    # (the table carries no claim; half the items halve its 27 s a seed)
    # evidence: EVIDENCE.md#path_items
    path_items: Annotated[int, Check(ge=2, note="retrieval needs at least 2 items")] = 72
    # "Mind the Gap": contrastive fine-tuning of tiny-world-clip at fixed temperatures
    temperatures: tuple[float, ...] = (1.0, 0.1, 0.03, 0.01)
    # at lr 3e-4, 15 steps move the gap at both ends of the sweep (at 1e-4: -0.04 at τ = 1, nothing at 0.01)
    # evidence: EVIDENCE.md#temperature_steps
    temperature_steps: int = 15
    # evidence: EVIDENCE.md#temperature_lr
    temperature_lr: float = 3e-4
    shift_lambdas: Annotated[tuple[float, ...], Check(unique=True, nonempty=True)] = (
        -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0)
    # The shift curves' loss is at each model's own learned temperature (1 / its logit scale); this one
    # (CLIP's learned 1/100) adds a second, labelled curve per model. None: no second curve.
    shift_temperature: float | None = 0.01
    show_samples: int = 4  # samples kept for the explorer
    model_seed: Annotated[int, Check(ge=0)] = 0  # seeds random initialisation when the model has no weights
    device: str | None = None  # None: cuda if available, else cpu

    def __post_init__(self):
        kit.check_seeds(self, ("seeds", "claim_seeds"))
        kit.check_config(self)  # every field against its annotation: types, finite floats
        kit.tuple_fields(self, ("seeds", "shared_layers", "tasks", "temperatures", "shift_lambdas")
                         + (() if self.unshared_layers is None else ("unshared_layers",))
                         + (() if self.task_weights is None else ("task_weights",))
                         + (() if self.methods == "all" else ("methods",)), scalars=(str, int, float))
        if not self.methods:
            raise ValueError("methods=() : give at least one method id, or 'all'")
        kit.check_methods("module_selection", self.methods)
        if not self.seeds:
            raise ValueError("seeds=() : give at least one seed")
        for k in (*self.shared_layers, *(self.unshared_layers or ()), self.default_k):
            if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
                raise ValueError(f"shared layers k={k!r}; accepted: an integer >= 0 (at most the text depth) "
                                 "or 'all'")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks={self.tasks!r}: unknown {bad}; accepted: {', '.join(TASKS)}")
        if self.qa_scoring not in QA_SCORINGS:
            raise ValueError(f"qa_scoring={self.qa_scoring!r}; accepted: {', '.join(map(repr, QA_SCORINGS))}")
        if any(t <= 0 for t in self.temperatures) or (self.shift_temperature is not None
                                                       and self.shift_temperature <= 0):
            raise ValueError(f"temperatures={self.temperatures!r}, shift_temperature={self.shift_temperature!r}: "
                             "temperatures are > 0")
        for name in ("lr", "new_lr", "direction_new_lr", "temperature_lr"):  # its own param groups skip torch's check
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; accepted: a learning rate > 0")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r}; accepted: >= 0")
        dupes = [name for name in ("shared_layers", "unshared_layers", "tasks", "temperatures")
                 if len(set(getattr(self, name) or ())) != len(getattr(self, name) or ())]
        if dupes:
            raise ValueError(f"{dupes[0]}={getattr(self, dupes[0])!r}: a value is given twice; each runs once")
        for name in ("batch_size", "latents", "flops_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        for name in ("steps", "direction_steps", "temperature_steps", "show_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.task_weights is not None and (len(self.task_weights) != len(TASKS) or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in self.task_weights)):
            raise ValueError(f"task_weights={self.task_weights!r}; accepted: None or {len(TASKS)} integers >= 1, "
                             f"one per task in the order {', '.join(TASKS)}")
        if self.frames < 2:
            raise ValueError(f"frames={self.frames!r}: clips need at least 2 frames (the temporal module "
                             "convolves over time)")
        check_fields(self)  # the ranges each field declares
        if self.test_split in TRAINING_SPLITS or self.test_split == self.train_split:
            raise ValueError(f"test_split={self.test_split!r} is a split models train on (train_split="
                             f"{self.train_split!r}; tiny-world-clip: 'pretrain'); accepted: a split no cell trains "
                             "on, e.g. 'novel_test' or one of " + ", ".join(map(repr, EVAL_SPLITS)))
        kit.check_device_field(self)
        check_model(self.model, self.pretrained)  # a known name, weights that exist: before any run

    @property
    def weights(self) -> tuple[int, ...] | None:
        """`task_weights` of the tasks trained (`tasks`, in their order); None: one step of each in turn."""
        if self.task_weights is None:
            return None
        return tuple(self.task_weights[TASKS.index(t)] for t in self.tasks)

    @property
    def default_ks(self) -> tuple[int | str, ...]:
        """The paper's k alone: the setting of the cells that run only there (temporal off)."""
        return (self.default_k,)

    @property
    def unshared_ks(self) -> tuple[int | str, ...]:
        """The k of the capacity-matched control's cells (`unshared_layers`; None: default_k; never 0)."""
        ks = self.unshared_layers if self.unshared_layers is not None else (self.default_k,)
        return tuple(k for k in ks if k != 0)

    @classmethod
    def preset(cls, quick: bool = False, **overrides: Any) -> Config:
        """The config with `overrides` (None keeps the default); `quick` shrinks it to a smoke run."""
        return kit.preset(cls, quick, QUICK, overrides)
