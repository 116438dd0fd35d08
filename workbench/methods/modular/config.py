"""`ModularConfig`: what a modular model (mPLUG-2 at workbench scale) is built with."""
from __future__ import annotations

from dataclasses import dataclass

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
    seed           seeds the initialisation of every new module (same seed, same numbers)
    """

    shared_layers: int | str = 2
    latents: int = 16
    temporal: bool = True
    routing: str = "path"
    fusion_layers: int = 1
    decoder_layers: int = 1
    vocab: tuple[int, ...] | None = None
    classes: int = 10
    answers: int = 16
    seed: int = 0

    def __post_init__(self):
        k = self.shared_layers
        if not (k == "all" or (isinstance(k, int) and not isinstance(k, bool) and k >= 0)):
            raise ValueError(f"shared_layers={k!r}; accepted: an integer 0 ... text depth, or 'all'")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing={self.routing!r}; accepted: {', '.join(map(repr, ROUTINGS))}")
        for name in ("latents", "fusion_layers", "decoder_layers", "classes", "answers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name in ("latents", "classes", "answers")
                                                                     else 0):
                raise ValueError(f"{name}={v!r}; accepted: an integer >= "
                                 f"{1 if name in ('latents', 'classes', 'answers') else 0}")
        if not isinstance(self.temporal, bool):
            raise ValueError(f"temporal={self.temporal!r}; accepted: True or False")
        if self.vocab is not None:
            if isinstance(self.vocab, (str, bytes)) or not all(
                    isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in self.vocab):
                raise ValueError(f"vocab={self.vocab!r}; accepted: None or a tuple of token ids (ints >= 0)")
            object.__setattr__(self, "vocab", tuple(sorted(set(self.vocab))))

    def depth(self, text_depth: int) -> int:
        """k as a number for a text encoder of `text_depth` layers; raises when k is larger."""
        if self.shared_layers == "all":
            return text_depth
        if self.shared_layers > text_depth:
            raise ValueError(f"shared_layers={self.shared_layers} but the text encoder has {text_depth} layers; "
                             f"accepted: 0 ... {text_depth}, or 'all'")
        return int(self.shared_layers)
