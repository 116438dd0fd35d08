"""UniCode: semantic + specific encoders per modality, a quantizer, CLUB, Cross-CPC, L_cmcm, decoders; all switchable.

The losses and their weights follow the authors' pretraining (haihuangcode/CMG, pretrain.py): reconstruction +
commitment (with the cross terms) + CLUB bound + Cross-CPC + L_cmcm, all weight 1; each part's gradient norm
is clipped at 0.5 (train.py, clip_groups). Remaining departures from their code, besides those stated in
quantizer.py, cpc.py, club.py and cmcm.py: the encoders are smaller (a temporal transformer or MLP on
spatially pooled features, not their video attention over the 7x7 grid and their text LSTM); the specific
encoder is a per-step MLP and the decoder a linear map of [quantised ; specific]; there is no learning-rate
schedule (theirs halves at epochs 10, 20, 30, after their 6 epochs: none in effect either).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from workbench.checks import check_finite
from workbench.models.modes import eval_mode

from .baselines import build_quantizer
from .club import CLUB
from .cmcm import cmcm_loss
from .config import MODALITIES, CodebookConfig, check_modalities
from .cpc import CrossCPC
from .encoders import Decoder, SemanticEncoder, SpecificEncoder, pool_steps, step_dim
from .infonce import masked_infonce


class Losses(NamedTuple):
    """Named scalar terms of one training step; a switched-off term is 0. total = the sum (all weights 1)."""

    total: Tensor
    recon: Tensor
    commitment: Tensor
    club: Tensor
    cpc: Tensor
    infonce: Tensor
    cmcm: Tensor


def features_of(data: Any) -> dict[str, Tensor]:
    """modality -> (N, T, *shape) from an EventFeatures (its .features) or a plain mapping, checked."""
    feats = data.features if hasattr(data, "features") else data
    if not isinstance(feats, Mapping) or not feats:
        raise TypeError(f"expected EventFeatures or a non-empty dict modality -> tensor, got {type(data).__name__}")
    for m in feats:
        if m not in MODALITIES:
            raise ValueError(f"unknown modality {m!r}; accepted: {', '.join(MODALITIES)}")
    lead = {m: tuple(x.shape[:2]) for m, x in feats.items()}
    if len(set(lead.values())) != 1:
        raise ValueError(f"modalities disagree on (sequences, steps): {lead}")
    if not hasattr(data, "features"):  # EventFeatures checked theirs when built
        for m, x in feats.items():
            check_finite(x, f"{m} features")
    return dict(feats)


class UniCode(nn.Module):
    """Uni-Code (CMG, NeurIPS 2023) at workbench scale; cfg.quantizer swaps in the baselines.

    input_shapes: modality -> per-step feature shape, (D,) or (h, w, c). Features passed to every method are
    modality -> (N, T, *shape); any subset of the model's modalities may be given (extra known ones are ignored).
    """

    def __init__(self, cfg: CodebookConfig, input_shapes: Mapping[str, tuple[int, ...]], seed: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.modalities = check_modalities(input_shapes)
        for m in self.modalities:
            shape = input_shapes[m]
            if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in shape):
                raise TypeError(f"input_shapes[{m!r}]={shape!r}; accepted: a per-step feature shape, a tuple of "
                                "integers (D,) or (h, w, c)")
        self.input_shapes = {m: tuple(int(s) for s in input_shapes[m]) for m in self.modalities}
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self._build()

    def _build(self) -> None:
        cfg, dims = self.cfg, {m: step_dim(s) for m, s in self.input_shapes.items()}
        self.semantic_encoders = nn.ModuleDict({m: SemanticEncoder(s, cfg.dim, cfg.encoder, cfg.layers, cfg.heads)
                                                for m, s in self.input_shapes.items()})
        needs_specific = cfg.recon or cfg.uses_club
        self.specific_encoders = nn.ModuleDict(
            {m: SpecificEncoder(s, cfg.specific_dim) for m, s in self.input_shapes.items()} if needs_specific else {})
        self.decoders = nn.ModuleDict(
            {m: Decoder(cfg.dim, cfg.specific_dim, dims[m]) for m in self.modalities} if cfg.recon else {})
        self.quantizer = build_quantizer(cfg, self.modalities)
        self.clubs = nn.ModuleDict({m: CLUB(cfg.dim, cfg.specific_dim, cfg.club_hidden, cfg.club_lr)
                                    for m in self.modalities} if cfg.uses_club else {})
        self.cpc = (CrossCPC(self.modalities, cfg.dim, cfg.cpc_k, cfg.cpc_cross, cfg.cpc_within, cfg.cpc_layers)
                    if cfg.uses_cpc else None)

    @property
    def n_codes(self) -> int:
        return self.cfg.n_codes

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def main_parameters(self) -> list[nn.Parameter]:
        """Everything the main optimiser trains (CLUB's networks have their own Adam)."""
        club = {id(p) for p in self.clubs.parameters()}
        return [p for p in self.parameters() if id(p) not in club]

    def clip_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parts whose gradient norms are clipped separately, as the authors clip each of their modules:
        encoders (semantic, specific and the quantizer's own parameters, their `Encoder`), Cross-CPC, decoders."""
        groups = {"encoders": [*self.semantic_encoders.parameters(), *self.specific_encoders.parameters(),
                               *self.quantizer.parameters()],
                  "cpc": list(self.cpc.parameters()) if self.cpc is not None else [],
                  "decoders": list(self.decoders.parameters())}
        return {name: ps for name, ps in groups.items() if ps}

    def clip_gradients(self, max_norm: float) -> dict[str, float]:
        """Clip each part's gradient norm to max_norm (torch.nn.utils.clip_grad_norm_); returns the norms before."""
        return {name: float(torch.nn.utils.clip_grad_norm_(ps, max_norm)) for name, ps in self.clip_groups().items()}

    def codebook(self, modality: str | None = None) -> Tensor:
        """(K, D) code vectors (per_modality: that modality's codebook)."""
        return self.quantizer.codebook(modality)

    def _inputs(self, features: Any) -> dict[str, Tensor]:
        feats = features_of(features)
        mine = {m: x.to(self.device) for m, x in feats.items() if m in self.modalities}
        if not mine:
            raise ValueError(f"none of the model's modalities {self.modalities} in the features ({tuple(feats)})")
        return mine

    def semantic(self, features: Any) -> dict[str, Tensor]:
        """modality -> (N, T, dim) pre-quantisation semantic features (with grad, in the current mode)."""
        return {m: self.semantic_encoders[m](x) for m, x in self._inputs(features).items()}

    @torch.no_grad()
    def codes(self, features: Any) -> dict[str, Tensor]:
        """modality -> (N, T) long code indices in [0, n_codes), eval mode, no update."""
        with eval_mode(self):
            return self.quantizer.lookup(self.semantic(features))[1]

    @torch.no_grad()
    def quantized(self, features: Any) -> dict[str, Tensor]:
        """modality -> (N, T, dim) quantised semantic features (what downstream heads consume), eval mode."""
        with eval_mode(self):
            return self.quantizer.lookup(self.semantic(features))[0]

    def step(self, features: Any) -> Losses:
        """All switched-on losses of one batch. In training mode this also updates the codebook (EMA, reset)
        and runs CLUB's inner steps with its own optimiser; backward() on .total is the caller's."""
        cfg, x = self.cfg, self._inputs(features)
        z = {m: self.semantic_encoders[m](v) for m, v in x.items()}
        books = {m: self.quantizer.codebook(m).detach().clone() for m in z} if cfg.uses_cmcm else {}
        out = self.quantizer(z)  # updates the codebook in training: L_cmcm uses the copy from before, as the authors
        self.last_indices = {m: i.detach() for m, i in out.indices.items()}  # the batch's codes, for histories
        zero = out.commitment.new_zeros(())
        specific = {m: self.specific_encoders[m](v) for m, v in x.items()} if len(self.specific_encoders) else {}
        recon = zero
        if cfg.recon:
            for m, v in x.items():
                target = pool_steps(v, self.input_shapes[m])
                recon = recon + F.mse_loss(self.decoders[m](out.quantized[m], specific[m]), target)
        club = zero
        if cfg.uses_club:
            for m in x:
                q, s = out.quantized[m].reshape(-1, cfg.dim), specific[m].reshape(-1, cfg.specific_dim)
                if cfg.club_detach_semantic:  # the bound then shapes the specific encoder only
                    q = q.detach()
                if self.training:
                    self.clubs[m].fit(q, s, cfg.club_steps)
                club = club + self.clubs[m](q, s)
        cpc = self.cpc(z) if self.cpc is not None else zero
        nce = masked_infonce(z, cfg.mask_ratio, cfg.temperature) if cfg.masked_infonce else zero
        cmcm = cmcm_loss(z, books, cfg.eps) if cfg.uses_cmcm else zero
        total = recon + out.commitment + club + cpc + nce + cmcm
        return Losses(total, recon, out.commitment, club, cpc, nce, cmcm)
