"""CodebookConfig: every setting of the Uni-Code model and its baselines, checked on construction."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Annotated, Literal, get_args

from workbench.checks import BadValue, Check, check_fields
from workbench.data.event_features import MODALITIES

Quantizer = Literal["shared_ema", "vq_ema", "vqtorch", "fsq", "rvq", "per_modality"]
QUANTIZERS: tuple[str, ...] = get_args(Quantizer)
ENCODERS = ("transformer", "mlp")
FSQ_LEVELS = (5, 5, 4, 4)  # the default FSQ levels: 400 codes

# The paper's Table 2 rows (and the baselines) as switch settings on top of the full model.
VARIANTS: dict[str, dict] = {
    "full": {},
    "no_club": {"club": False},
    "no_cpc": {"cpc": False},
    "no_club_cpc": {"club": False, "cpc": False},
    "no_mm_ema": {"mm_ema": False},
    "no_reset": {"reset": False},
    "no_mm_ema_reset": {"mm_ema": False, "reset": False},
    "plain_vq": {"quantizer": "vq_ema"},
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
    "vq_ema" (plain shared VQ-EMA: the same codebook with mm_ema, cross_commit and reset forced off),
    "vqtorch" (vector-quantize-pytorch VectorQuantize: k-means init, cosine similarity, dead-code
    expiry, rotation trick), "fsq", "rvq" (vector-quantize-pytorch FSQ / ResidualVQ), "per_modality"
    (one EMA codebook per modality, aligned by index through the MM-EMA and cross-commitment terms).
    masked_infonce replaces CLUB + Cross-CPC (MICU-style): when on, club and cpc are not used.

    With quantizer="fsq" the number of codes is the product of fsq_levels (`n_codes`), not `codes`:
    a `codes` other than 400 with the default levels is refused (it would be ignored); with levels of
    your own, `codes` names the size they stand for (study 03 picks the FSQ paper's level set nearest
    to it) and `n_codes` says how many there are.
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
    reset_after: Annotated[int, Check(ge=1)] = 300  # batches unused by every modality before a code is re-initialised
    reset_recent: Annotated[int, Check(ge=1)] = 100  # a code used within this many batches counts as recently used
    reset_noise: Annotated[float, Check(ge=0)] = 1 / 1024
    club: bool = True
    club_steps: Annotated[int, Check(ge=1)] = 5
    club_lr: Annotated[float, Check(gt=0)] = 1e-3
    club_hidden: Annotated[int, Check(ge=1)] = 256
    cpc: bool = True
    cpc_k: Annotated[int, Check(ge=1)] = 1
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
        return replace(cls(), **{**VARIANTS[name], **overrides})

    @property
    def uses_club(self) -> bool:
        return self.club and not self.masked_infonce

    @property
    def uses_cpc(self) -> bool:
        return self.cpc and not self.masked_infonce

    @property
    def ema_family(self) -> bool:
        """Our own EMA codebook (shared_ema, vq_ema, per_modality): MM-EMA, cross commit and reset apply."""
        return self.quantizer in ("shared_ema", "vq_ema", "per_modality")

    @property
    def n_codes(self) -> int:
        """How many distinct code indices codes() can return (fsq: the product of its levels)."""
        return math.prod(self.fsq_levels) if self.quantizer == "fsq" else self.codes


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
