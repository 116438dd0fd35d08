"""Quantizer baselines on the same encoders, behind EMACodebook's interface, and the factory choosing one.

- "vq_ema": our EMACodebook with MM-EMA, cross commitment and reset off (and the model's L_cmcm off).
  The paper's plain-VQ row is the variant "plain_vq" (this quantizer with CLUB and Cross-CPC off too:
  reconstruction and commitment only); "vq_ema_dcid" keeps CLUB and Cross-CPC.
- "vqtorch": vector-quantize-pytorch's VectorQuantize with k-means init, cosine similarity, dead-code
  expiry and the rotation trick, one codebook shared by every modality.
- "fsq": its FSQ (levels from the config; the flat index is the code).
- "rvq": its ResidualVQ (depth from the config, k-means init, dead-code expiry); the code of a step is its
  first-level index, the quantised feature the sum over levels.
- "per_modality": one EMA codebook per modality, aligned by index (EMACodebook(separate=True)).
All modalities go through the library quantizers in ONE call (concatenated along the batch), so a shared
EMA codebook is updated once per batch (the two-pass hazard of vector-quantize-pytorch issue #162).
The library is imported on first use (it takes seconds to import).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from workbench.models.modes import eval_mode

from .config import CodebookConfig
from .quantizer import EMACodebook, QuantOut


def build_quantizer(cfg: CodebookConfig, modalities: tuple[str, ...]) -> nn.Module:
    """The quantizer cfg.quantizer names, for these modalities."""
    if cfg.ema_family:
        plain = cfg.quantizer == "vq_ema"
        return EMACodebook(
            modalities, cfg.codes, cfg.dim, decay=cfg.decay, commitment=cfg.commitment, eps=cfg.eps,
            cross_weight=cfg.cross_weight if (cfg.mm_ema and not plain) else 0.0,
            cross_commit=cfg.cross_commit and not plain, reset=cfg.reset and not plain,
            reset_after=cfg.reset_after, reset_recent=cfg.reset_recent, reset_noise=cfg.reset_noise,
            separate=cfg.quantizer == "per_modality", reset_rule=cfg.reset_rule)
    return LibraryQuantizer(cfg, modalities)


class LibraryQuantizer(nn.Module):
    """A vector-quantize-pytorch quantizer shared by every modality, with EMACodebook's interface."""

    def __init__(self, cfg: CodebookConfig, modalities: tuple[str, ...]):
        super().__init__()
        import vector_quantize_pytorch as vqp

        self.modalities, self.kind, self.dim = tuple(modalities), cfg.quantizer, cfg.dim
        if cfg.quantizer == "vqtorch":
            self.vq = vqp.VectorQuantize(
                dim=cfg.dim, codebook_size=cfg.codes, decay=cfg.decay, commitment_weight=cfg.commitment,
                kmeans_init=True, use_cosine_sim=True, threshold_ema_dead_code=cfg.vqtorch_dead_threshold,
                rotation_trick=True)
        elif cfg.quantizer == "fsq":
            self.vq = vqp.FSQ(levels=list(cfg.fsq_levels), dim=cfg.dim, preserve_symmetry=2 in cfg.fsq_levels)
        elif cfg.quantizer == "rvq":
            self.vq = vqp.ResidualVQ(
                dim=cfg.dim, num_quantizers=cfg.rvq_depth, codebook_size=cfg.codes, decay=cfg.decay,
                commitment_weight=cfg.commitment, kmeans_init=True,
                threshold_ema_dead_code=cfg.vqtorch_dead_threshold)
        else:
            raise ValueError(f"{cfg.quantizer!r} is not a library quantizer; accepted: vqtorch, fsq, rvq")

    def _run(self, z: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        unknown = [m for m in z if m not in self.modalities]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r} for this quantizer; accepted: {self.modalities}")
        names = list(z)
        x = torch.cat([z[m] for m in names], dim=0)  # (M * N, T, D)
        out = self.vq(x)
        if self.kind == "fsq":
            q, idx, loss = out[0], out[1], x.new_zeros(())
        else:
            q, idx, loss = out
            loss = loss.sum()
        if self.kind == "rvq":
            idx = idx[..., 0]  # the first-level code
        n = z[names[0]].shape[0]
        qs = dict(zip(names, q.split(n, dim=0)))
        ids = dict(zip(names, idx.long().split(n, dim=0)))
        return qs, ids, loss

    def forward(self, z: dict[str, Tensor]) -> QuantOut:
        q, idx, loss = self._run(z)
        return QuantOut(q, idx, loss)

    def lookup(self, z: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        with eval_mode(self), torch.no_grad():
            q, idx, _ = self._run(z)
        return q, idx

    def codebook(self, modality: str | None = None) -> Tensor:
        """(K, D) code vectors: VectorQuantize's codebook, or the first ResidualVQ level's."""
        if self.kind == "vqtorch":
            return self.vq.codebook
        if self.kind == "rvq":
            return self.vq.layers[0].codebook
        raise ValueError("FSQ has no learned codebook vectors; codebook() accepts vqtorch, rvq and the EMA quantizers")
