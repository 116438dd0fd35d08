"""CodebookConfig: every setting of the Uni-Code model and its baselines, checked on construction."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Literal, get_args

from workbench.checks import BadValue, Check, check_field_names, check_fields
from workbench.data.event_features import MODALITIES

Quantizer = Literal["shared_ema", "vq_ema", "vqtorch", "fsq", "rvq", "per_modality"]
QUANTIZERS: tuple[str, ...] = get_args(Quantizer)
ENCODERS = ("transformer", "mlp")
FSQ_LEVELS = (5, 5, 4, 4)  # the default FSQ levels: 400 codes
ResetRule = Literal["any", "every"]
RESET_RULES: tuple[str, ...] = get_args(ResetRule)

# The paper's Table 2 / 3 rows (and the baselines) as switch settings on top of the full model.
# plain_vq is the paper's plain-VQ row: one shared VQ-EMA codebook trained by reconstruction and commitment
# only (no CLUB, Cross-CPC, MM-EMA, cross commitment, reset or L_cmcm; the encoders and decoders are the
# same as the full model's, the decoder still reads the specific features). vq_ema_dcid is what plain_vq
# meant before: the same plain codebook but CLUB and Cross-CPC kept (DCID without the cross-modal codebook
# terms). reset_every and club_specific_only are not paper rows: the paper's wording of the reset rule
# (a code is kept only while every modality uses it) and CLUB shaping the specific encoder alone.
VARIANTS: dict[str, dict] = {
    "full": {},
    "no_club": {"club": False},
    "no_cpc": {"cpc": False},
    "no_club_cpc": {"club": False, "cpc": False},
    "no_mm_ema": {"mm_ema": False},
    "no_reset": {"reset": False},
    "no_mm_ema_reset": {"mm_ema": False, "reset": False},
    "no_cmcm": {"cmcm": False},
    "reset_every": {"reset_rule": "every"},
    "club_specific_only": {"club_detach_semantic": True},
    "plain_vq": {"quantizer": "vq_ema", "club": False, "cpc": False, "mm_ema": False, "reset": False,
                 "cross_commit": False, "cmcm": False},
    "vq_ema_dcid": {"quantizer": "vq_ema"},
    "vqtorch": {"quantizer": "vqtorch"},
    "fsq": {"quantizer": "fsq"},
    "rvq": {"quantizer": "rvq"},
    "per_modality": {"quantizer": "per_modality"},
    "masked_infonce": {"masked_infonce": True},
}


@dataclass(frozen=True)
class CodebookConfig:
    """Uni-Code's settings (defaults: the authors' code) and the switches for every ablation.

    quantizer: "shared_ema" (ours: one codebook, EMA, MM-EMA cross term, cross commitment, reset),
    "vq_ema" (plain shared VQ-EMA: the same codebook with mm_ema, cross_commit, reset and cmcm forced off;
    CLUB and Cross-CPC follow their own switches, see VARIANTS plain_vq / vq_ema_dcid),
    "vqtorch" (vector-quantize-pytorch VectorQuantize: k-means init, cosine similarity, dead-code
    expiry, rotation trick), "fsq", "rvq" (vector-quantize-pytorch FSQ / ResidualVQ), "per_modality"
    (one EMA codebook per modality, aligned by index through the MM-EMA and cross-commitment terms).
    masked_infonce replaces CLUB + Cross-CPC (MICU-style): when on, club and cpc are not used.

    With quantizer="fsq" the number of codes is the product of fsq_levels (`n_codes`), not `codes`:
    a `codes` other than 400 with the default levels is refused (it would be ignored); with levels of
    your own, `codes` names the size they stand for (study 03 picks the FSQ paper's level set nearest
    to it) and `n_codes` says how many there are.

    cmcm: the authors' L_cmcm (cross-modal code matching; see cmcm.py), weight 1; it needs code vectors, so
    it is off for "vq_ema" (plain) and "fsq" (no learned codebook).
    Reset windows: a code whose batches-unused count exceeds reset_after is re-initialised from a code
    unused for fewer than reset_recent batches (authors: 300 and 100). The windows must be disjoint
    (reset_recent < reset_after); reset_recent=None scales with reset_after: round(reset_after / 3), at
    least 1 (300 -> 100, 8 -> 3). reset_rule "any" (the authors' code): a code counts as used when any
    modality used it; "every" (the paper's wording): a code is re-initialised unless every modality used it
    within reset_after batches, and only codes every modality used within reset_recent are copied.
    grad_clip: the gradient norm of each part (encoders + quantizer, Cross-CPC, decoders) is clipped to
    this value after backward, as the authors clip each of their modules (0.5; 0 turns it off).
    club_detach_semantic: CLUB's bound sees the quantised semantic features detached, so it shapes only
    the specific encoder (not the authors' setting).
    """

    dim: Annotated[int, Check(ge=1)] = 256
    codes: Annotated[int, Check(ge=2, note="with quantizer='fsq', the product of fsq_levels")] = 400
    decay: Annotated[float, Check(ge=0, lt=1)] = 0.99
    commitment: Annotated[float, Check(ge=0)] = 0.25
    eps: Annotated[float, Check(gt=0)] = 1e-5
    quantizer: Quantizer = "shared_ema"
    mm_ema: bool = True
    # share of the EMA sum from the other modalities (authors: 0.5)
    cross_weight: Annotated[float, Check(ge=0, le=1)] = 0.5
    cross_commit: bool = True  # own code 2 : other modalities' codes 1 (split among them)
    reset: bool = True
    # a code unused for more than this many batches is re-initialised
    reset_after: Annotated[int, Check(ge=1)] = 300
    # copied from codes unused for fewer batches (disjoint windows); None: round(reset_after / 3), at least 1
    reset_recent: Annotated[int, Check(ge=1)] | None = None
    reset_rule: ResetRule = "any"  # "any": used if any modality used it (authors' code); "every": the paper's wording
    reset_noise: Annotated[float, Check(ge=0)] = 1 / 1024
    cmcm: bool = True
    # per-part gradient norm clip after backward (authors: 0.5); 0 = off
    grad_clip: Annotated[float, Check(ge=0)] = 0.5
    club: bool = True
    club_detach_semantic: bool = False
    club_steps: Annotated[int, Check(ge=1)] = 5
    club_lr: Annotated[float, Check(gt=0)] = 1e-3
    club_hidden: Annotated[int, Check(ge=2)] = 256  # CLUB's layers are club_hidden // 2 wide
    cpc: bool = True
    cpc_k: Annotated[int, Check(ge=1)] = 1
    cpc_layers: Annotated[int, Check(ge=1)] = 2  # LSTM layers of each context network (authors: 2)
    cpc_cross: Annotated[float, Check(ge=0)] = 1.0
    cpc_within: Annotated[float, Check(ge=0)] = 0.1
    recon: bool = True
    masked_infonce: bool = False
    mask_ratio: Annotated[float, Check(ge=0, le=1)] = 0.3
    temperature: Annotated[float, Check(gt=0)] = 0.1
    encoder: Literal["transformer", "mlp"] = "transformer"
    layers: Annotated[int, Check(ge=1)] = 2
    heads: Annotated[int, Check(ge=1)] = 4
    specific_dim: Annotated[int, Check(ge=1)] = 256
    fsq_levels: Annotated[tuple[int, ...], Check(ge=2, nonempty=True)] = FSQ_LEVELS  # 400 codes
    rvq_depth: Annotated[int, Check(ge=1)] = 4
    vqtorch_dead_threshold: Annotated[float, Check(ge=0)] = 2.0

    def __post_init__(self):
        check_fields(self)
        recent_window(self.reset_after, self.reset_recent, "CodebookConfig.")
        if self.dim % self.heads:
            raise BadValue(f"CodebookConfig.dim={self.dim} is not divisible by heads={self.heads}; accepted: a dim "
                           f"that is a multiple of heads (each head takes dim / heads)")
        if self.quantizer == "fsq" and self.fsq_levels == FSQ_LEVELS and self.codes != math.prod(FSQ_LEVELS):
            raise BadValue(
                f"CodebookConfig.codes={self.codes} with quantizer='fsq', whose codes are the product of "
                f"fsq_levels={self.fsq_levels} ({math.prod(self.fsq_levels)}): codes would be ignored; accepted: "
                f"fsq_levels for the codes you want (e.g. (8, 5, 5, 5) for 1000, (8, 8, 4, 4) for 1024), or "
                f"codes={math.prod(self.fsq_levels)}")

    @classmethod
    def variant(cls, name: str, **overrides) -> CodebookConfig:
        """A named row of the ablation table (VARIANTS), with further overrides."""
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; accepted: {', '.join(VARIANTS)}")
        check_field_names(cls, overrides, f"variant({name!r}, ...)")
        return replace(cls(), **{**VARIANTS[name], **overrides})

    @property
    def uses_club(self) -> bool:
        return self.club and not self.masked_infonce

    @property
    def uses_cpc(self) -> bool:
        return self.cpc and not self.masked_infonce

    @property
    def uses_cmcm(self) -> bool:
        """L_cmcm is on: switched on and the quantizer has code vectors beyond the plain VQ-EMA row."""
        return self.cmcm and self.quantizer not in ("vq_ema", "fsq")

    @property
    def recent_window(self) -> int:
        """reset_recent, or its default scaled with reset_after."""
        return recent_window(self.reset_after, self.reset_recent)

    @property
    def ema_family(self) -> bool:
        """Our own EMA codebook (shared_ema, vq_ema, per_modality): MM-EMA, cross commit and reset apply."""
        return self.quantizer in ("shared_ema", "vq_ema", "per_modality")

    @property
    def n_codes(self) -> int:
        """How many distinct code indices codes() can return (fsq: the product of its levels)."""
        return math.prod(self.fsq_levels) if self.quantizer == "fsq" else self.codes


def recent_window(reset_after: int, reset_recent: int | None, owner: str = "") -> int:
    """The recent window of the dead-code reset: reset_recent, or round(reset_after / 3) (at least 1) when
    None; it must lie below reset_after so that no code is both dead (unused > reset_after) and a source
    to copy (unused < reset_recent), as in the authors' 300 / 100."""
    recent = max(1, round(reset_after / 3)) if reset_recent is None else int(reset_recent)
    if recent >= reset_after:
        given = f"{recent}" if reset_recent is not None else f"{recent}, the default round(reset_after / 3)"
        raise ValueError(f"{owner}reset_recent ({given}) must be smaller than {owner}reset_after ({reset_after}): "
                         f"a code unused for more than reset_after batches is re-initialised from a code unused for "
                         f"fewer than reset_recent batches, and the two windows must not overlap (authors: 100 < 300)")
    return recent


def check_modalities(names) -> tuple[str, ...]:
    """The modality names, in order, after checking each is known and none repeats."""
    names = tuple(names)
    if not names:
        raise ValueError(f"at least one modality is needed; accepted: {', '.join(MODALITIES)}")
    for name in names:
        if name not in MODALITIES:
            raise ValueError(f"unknown modality {name!r}; accepted: {', '.join(MODALITIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"modality names repeat: {names}")
    return names
