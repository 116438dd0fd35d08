"""CodebookConfig: every setting of the Uni-Code model and its baselines, checked on construction."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from workbench.data.event_features import MODALITIES

QUANTIZERS = ("shared_ema", "vq_ema", "vqtorch", "fsq", "rvq", "per_modality")
ENCODERS = ("transformer", "mlp")
RESET_RULES = ("any", "every")

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
    masked_infonce replaces CLUB + Cross-CPC (MICU-style): when on, club and cpc are not used (L_cmcm stays).
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

    dim: int = 256
    codes: int = 400
    decay: float = 0.99
    commitment: float = 0.25
    eps: float = 1e-5
    quantizer: str = "shared_ema"
    mm_ema: bool = True
    cross_weight: float = 0.5  # share of the EMA sum from the other modalities (authors: 0.5)
    cross_commit: bool = True  # own code 2 : other modalities' codes 1 (split among them)
    reset: bool = True
    reset_after: int = 300  # a code unused for more than this many batches is re-initialised
    reset_recent: int | None = None  # copied from codes unused for fewer batches; None: round(reset_after / 3)
    reset_rule: str = "any"  # "any": used if any modality used it (authors' code); "every": the paper's wording
    reset_noise: float = 1 / 1024
    cmcm: bool = True
    grad_clip: float = 0.5  # per-part gradient norm clip after backward (authors: 0.5); 0 = off
    club: bool = True
    club_detach_semantic: bool = False
    club_steps: int = 5
    club_lr: float = 1e-3
    club_hidden: int = 256
    cpc: bool = True
    cpc_k: int = 1
    cpc_layers: int = 2  # LSTM layers of each context network (authors: 2)
    cpc_cross: float = 1.0
    cpc_within: float = 0.1
    recon: bool = True
    masked_infonce: bool = False
    mask_ratio: float = 0.3
    temperature: float = 0.1
    encoder: str = "transformer"
    layers: int = 2
    heads: int = 4
    specific_dim: int = 256
    fsq_levels: tuple[int, ...] = (5, 5, 4, 4)  # 400 codes
    rvq_depth: int = 4
    vqtorch_dead_threshold: float = 2.0

    def __post_init__(self):
        for name in ("dim", "codes", "club_steps", "cpc_k", "layers", "heads", "specific_dim", "club_hidden",
                     "rvq_depth", "reset_after", "cpc_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"CodebookConfig.{name} must be a positive integer, got {value!r}")
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r}; accepted: {', '.join(QUANTIZERS)}")
        if self.reset_recent is not None and (isinstance(self.reset_recent, bool)
                                              or not isinstance(self.reset_recent, int) or self.reset_recent <= 0):
            raise ValueError(f"CodebookConfig.reset_recent must be a positive integer or None, "
                             f"got {self.reset_recent!r}")
        recent_window(self.reset_after, self.reset_recent, "CodebookConfig.")
        if self.reset_rule not in RESET_RULES:
            raise ValueError(f"unknown reset_rule {self.reset_rule!r}; accepted: {', '.join(RESET_RULES)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; accepted: {', '.join(ENCODERS)}")
        for name in ("decay", "cross_weight", "mask_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == "decay" and value == 1.0):
                raise ValueError(f"CodebookConfig.{name} must be in [0, 1{')' if name == 'decay' else ']'}, "
                                 f"got {value!r}")
        for name in ("commitment", "eps", "club_lr", "cpc_cross", "cpc_within", "temperature", "reset_noise",
                     "vqtorch_dead_threshold", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name in ("eps", "club_lr", "temperature") and value == 0):
                raise ValueError(f"CodebookConfig.{name} must be a finite number >= 0 (> 0 for eps, club_lr, "
                                 f"temperature), got {value!r}")
        if self.club_hidden < 2:
            raise ValueError(f"CodebookConfig.club_hidden must be >= 2 (CLUB's layers are club_hidden // 2 wide), "
                             f"got {self.club_hidden}")
        if self.dim % self.heads:
            raise ValueError(f"CodebookConfig.dim ({self.dim}) must be divisible by heads ({self.heads})")
        if len(self.fsq_levels) == 0 or any(not isinstance(v, int) or v < 2 for v in self.fsq_levels):
            raise ValueError(f"CodebookConfig.fsq_levels must be integers >= 2, got {self.fsq_levels!r}")

    @classmethod
    def variant(cls, name: str, **overrides) -> CodebookConfig:
        """A named row of the ablation table (VARIANTS), with further overrides."""
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; accepted: {', '.join(VARIANTS)}")
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
