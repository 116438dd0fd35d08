"""`ModularConfig`: what a modular model (mPLUG-2 at workbench scale) is built with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from workbench.checks import Check, check_fields

ROUTINGS: tuple[str, ...] = ("path", "token")


@dataclass(frozen=True)
class ModularConfig:
    """Settings of `ModularModel.from_backend`; checked when the model is built (the text depth is known then).

    shared_layers  k: the last k text layers are the universal layers used by text and vision
                   (0 ... text depth, or "all" = every text layer)
    latents        learnable latent queries through which vision enters the universal layers
    temporal       build the local temporal modules of the vision blocks (clips only)
    routing        "path": one set of universal weights for both modalities, chosen by the task's path;
                   "token": per-modality copies of the universal layers' LayerNorms and MLPs, chosen per
                   token (mPLUG-Owl2's MultiwayNetwork); attention stays one shared object
    fusion_layers  text self-attention + cross-attention to vision layers
    decoder_layers causal text decoder layers (cross-attending to vision or to the fused streams)
    vocab          token ids the decoder reads and emits (the tokenizer's start/end/pad ids are added);
                   None = the tokenizer's whole vocabulary
    classes        classifier head outputs;  answers: QA answer-classification head outputs
    seed           seeds the initialisation of every new module (same seed, same numbers): each module
                   draws from its own stream forked from (seed, module name), so building one module
                   (the latents at k > 0, say) does not move another's starting weights
    shared_weights True: the universal layers are the text encoder's own blocks (mPLUG-2); False: deep
                   copies of them (the same parameter count on the vision side, not shared with text:
                   the capacity-matched control of the k sweep)
    frame_tokens   clips keep every frame's tokens (B, T * (1 + N), width) for the universal layers, the
                   decoder and the QA head, as mPLUG-2 does; False: averaged over time first. The pooled
                   clip embedding (retrieval, classification) is the time average either way
    temporal_cls   the temporal modules update the CLS token too (True) or the patch tokens only (False,
                   as mPLUG-2)
    """

    shared_layers: Annotated[int | Literal["all"], Check(ge=0, note="at most the text depth")] = 2
    latents: Annotated[int, Check(ge=1)] = 16
    temporal: bool = True
    routing: Literal["path", "token"] = "path"
    fusion_layers: Annotated[int, Check(ge=0)] = 1
    decoder_layers: Annotated[int, Check(ge=0)] = 1
    vocab: Annotated[tuple[int, ...] | None, Check(ge=0, nonempty=True, note="token ids")] = None
    classes: Annotated[int, Check(ge=1)] = 10
    answers: Annotated[int, Check(ge=1)] = 16
    seed: Annotated[int, Check(ge=0)] = 0
    shared_weights: bool = True
    frame_tokens: bool = False
    temporal_cls: bool = True

    def __post_init__(self):
        check_fields(self)
        if self.vocab is not None:
            object.__setattr__(self, "vocab", tuple(sorted(set(self.vocab))))  # a set of ids: order and repeats moot

    def depth(self, text_depth: int) -> int:
        """k as a number for a text encoder of `text_depth` layers; raises when k is larger."""
        if self.shared_layers == "all":
            return text_depth
        if self.shared_layers > text_depth:
            raise ValueError(f"shared_layers={self.shared_layers} but the text encoder has {text_depth} layers; "
                             f"accepted: 0 ... {text_depth}, or 'all'")
        return int(self.shared_layers)
