"""`ModeApproxConfig`: what to adapt, at which rank, in which form.

Aurora (NeurIPS 2023, "Parameter-efficient Tuning of Large-scale Multimodal Foundation Model")
approximates the updates of every adapted weight matrix of a multimodal model together: one
set of factors `U: d -> R`, `V: R -> d` and a core `C` (R x R x R) shared by all layers and both
modalities, and per adapted matrix only a mode vector `lambda` (length R).

Targets are matrix kinds, optionally restricted to one tower with a ``"tower:"`` prefix:

    ModeApproxConfig(rank=32)                                   # attn + mlp, both towers (default)
    ModeApproxConfig(rank=8, targets=("q", "v"))                # q and v projections only
    ModeApproxConfig(targets=PAPER_TARGETS, gated=True)         # where the paper puts adapters
    ModeApproxConfig.placed("paper", rank=8)                    # the same, by placement name

Placements (`PLACEMENTS`, named target sets): "all" -- every attention matrix (q, k, v, out) and
both MLP matrices of both towers, the default `targets`; "paper" -- where the authors' code
(WillDreamer/Aurora, CP/vit.py and CP/med.py) puts the updates: the image tower's attention q, k,
v, proj and MLP fc1, fc2, and the text tower's q, k, v only (its attention output and FFN keep
their pretrained weights).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from workbench.checks import Check, check_field_names, check_fields

PREFIX = "mode_approx_"  # every adapter parameter's name contains it: freezing/saving is a name filter
FORMS = ("tucker", "cp")
TOWERS = ("vision", "text")
MATRICES = ("q", "k", "v", "out", "fc1", "fc2")  # canonical order inside one transformer block
KINDS: dict[str, tuple[str, ...]] = {
    "attn": ("q", "k", "v", "out"),
    "mlp": ("fc1", "fc2"),
    **{m: (m,) for m in MATRICES},
}
# the paper (BLIP-base): image attention q, k, v, proj and image MLP; text attention q, k, v
# (self- and cross-attention; a dual encoder has no cross-attention); text FFN untouched
PAPER_TARGETS = ("vision:attn", "vision:mlp", "text:q", "text:k", "text:v")
PLACEMENTS: dict[str, tuple[str, ...]] = {  # placement name -> targets
    "all": ("attn", "mlp"),  # every attention and MLP matrix of both towers (the default targets)
    "paper": PAPER_TARGETS,  # the authors' code: vision attn + MLP, text q, k, v
}
GATE_FACTOR = 0.1  # the authors' fixed factor on the gated scale/shift (not learned)
GATE_INIT_STD = 2e-4  # N(0, 2e-4) init of the gate's scale and shift vectors
CONTEXT_WEIGHT = 0.1  # informative context enhancement: + 0.1 * batch-mean text feature


@dataclass(frozen=True)
class ModeApproxConfig:
    """Mode-approximation adapters on a dual-encoder CLIP (see the module docstring).

    rank:    R, the length of every mode vector (the paper's default is 32, 64 for video).
    form:    "tucker" (default; the authors' code: full R x R x R core, xavier init,
             M = C x_3 lambda) or "cp" (the paper's text: diagonal core, M = diag(lambda),
             i.e. delta_W = sum_r lambda_r v_r u_r^T; no core parameters).
    targets: matrix kinds, each "kind" or "tower:kind"; kinds: attn (= q, k, v, out),
             mlp (= fc1, fc2), q, k, v, out, fc1, fc2. Default: placement "all" (every
             attention and MLP matrix of both towers); `placed("paper")` gives the paper's.
    towers:  towers to adapt, from ("vision", "text").
    share:   True: one U, V (per distinct hidden width) and one core for the whole model;
             False: the paper's "parameter sharing off" ablation, one set per transformer block.
    dropout: on U(x), before the core (0.1 as in the authors' code).
    scale:   multiplies every update.
    gated:   the authors' gated query transformation, placed where it fits a dual encoder: on
             the text tower's self-attention outputs, out + 0.1 * (out * scale + shift), scale
             and shift d-vectors per text block, init N(0, 2e-4). Needs "text" in towers.
    context: informative context enhancement in contrastive training (see
             `ContextContrastiveObjective`): image features + 0.1 * batch-mean text feature.
    train:   other parameters to keep trainable: "head" (the projection heads), "logit_scale",
             or any substring of parameter names; everything else is frozen.
    seed:    seed of the adapter initialisation (same seed, same adapters).
    """

    rank: Annotated[int, Check(ge=1, note="R, at most the hidden width of the adapted towers")] = 32
    form: Literal["tucker", "cp"] = "tucker"
    targets: Annotated[tuple[str, ...], Check(nonempty=True, unique=True, nonblank=True)] = PLACEMENTS["all"]
    towers: Annotated[tuple[Literal["vision", "text"], ...], Check(nonempty=True, unique=True)] = TOWERS
    share: bool = True
    dropout: Annotated[float, Check(ge=0, lt=1)] = 0.1
    scale: Annotated[float, Check(gt=0, note="multiplies every update; 0 would switch them off")] = 1.0
    gated: bool = False
    context: bool = False
    train: Annotated[tuple[str, ...], Check(unique=True, nonblank=True, note="'head', 'logit_scale' or a part of "
                                            "a parameter name; an empty string would match every parameter")] = ()
    seed: Annotated[int, Check(ge=0)] = 0

    def __post_init__(self):
        for name in ("targets", "towers", "train"):  # one name for a tuple of one
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, (getattr(self, name),))
        check_fields(self)
        for target in self.targets:
            self._parse_target(target)
        if self.gated and "text" not in self.towers:
            raise ValueError(f"gated=True gates the text tower's attention outputs (as the paper does), "
                             f"but towers={self.towers!r} has no 'text'")

    def _parse_target(self, target: str) -> tuple[tuple[str, ...], str]:
        tower, _, kind = target.rpartition(":")
        if kind not in KINDS:
            raise ValueError(f"target {target!r}: unknown kind {kind!r}; accepted kinds: "
                             f"{', '.join(KINDS)}, optionally prefixed by a tower ('vision:mlp')")
        if tower and tower not in self.towers:
            raise ValueError(f"target {target!r} names tower {tower!r}, which is not in "
                             f"towers={self.towers!r}")
        return ((tower,) if tower else self.towers), kind

    def matrices(self, tower: str) -> tuple[str, ...]:
        """The matrix kinds adapted in `tower`, in canonical order (q, k, v, out, fc1, fc2)."""
        chosen: set[str] = set()
        for target in self.targets:
            towers, kind = self._parse_target(target)
            if tower in towers:
                chosen.update(KINDS[kind])
        return tuple(m for m in MATRICES if m in chosen)

    @property
    def placement(self) -> str | None:
        """The name of the placement (`PLACEMENTS`) whose targets these are, or None (a custom set)."""
        return next((name for name, targets in PLACEMENTS.items() if targets == self.targets), None)

    @classmethod
    def placed(cls, placement: str, **overrides: Any) -> ModeApproxConfig:
        """The config with the targets of a named placement: "all" (the default) or "paper"."""
        if "targets" in overrides:
            raise ValueError("placed(placement, targets=...) names the targets twice; give one of them")
        check_field_names(cls, overrides, f"placed({placement!r}, ...)")
        return cls(targets=placement_targets(placement), **overrides)

    @classmethod
    def paper(cls, **overrides: Any) -> ModeApproxConfig:
        """The paper's setting on a dual encoder: R = 32, its placement, gating, context, heads trained."""
        check_field_names(cls, overrides, "paper(...)")
        base = cls(rank=32, targets=PLACEMENTS["paper"], gated=True, context=True, train=("head",))
        return replace(base, **overrides)


def placement_targets(placement: str) -> tuple[str, ...]:
    """The targets of a named placement (`PLACEMENTS`); ValueError naming the accepted ones."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement={placement!r}; accepted: {', '.join(map(repr, PLACEMENTS))}")
    return PLACEMENTS[placement]
