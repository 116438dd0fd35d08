"""L_cmcm, Uni-Code's cross-modal code matching term, as the authors' code computes it.

Read from haihuangcode/CMG (main_model_2.py, `Cross_VQEmbeddingEMA*.forward`), not copied. For each
modality, every step's soft assignment to the codes is softmax(-sqrt(squared distance to every code)),
computed from the semantic features WITH gradient (the codebook itself gets none: it is EMA-updated); the
assignments are averaged over the steps of a sequence, p_a (N, K). For two modalities a, b the score of
sequence i against sequence j is

    S_ab[i, j] = <p_a[i], log(p_b[j] + 1e-10)> + <p_b[i], log(p_a[j] + 1e-10)>

and the term is a softmax cross-entropy over the batch that picks j = i:

    L_ab = -mean_i log( exp(S_ab[i, i] - m) / (sum_j exp(S_ab[i, j] - m) + eps) ),  m = min(S_ab)

(the authors shift by the minimum, `exp(S + max(-S))`, and add eps = 1e-5 to the denominator; computed here
in log space, which is the same number without overflow). The model's term is 0.5 * the sum of L_ab over
the unordered modality pairs (authors: 0.5 * L_av with two modalities, 0.5 * (L_av + L_at + L_tv) with
three); it rewards a sequence for using the same codes in every modality. The authors compute it with the
codebook before the batch's EMA update, as UniCode.step does.

For the library quantizers (vqtorch; rvq: its first level) the term uses their codebook with the same
Euclidean distances; FSQ has no code vectors and the plain VQ-EMA row switches it off (config.uses_cmcm).

Departure: squared distances are clamped at 1e-12 before the square root (a rounding error can make one
slightly negative, which gives NaN in the authors' code; the clamp only matters within 1e-6 of a code).
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_codes(z: Tensor, codebook: Tensor) -> Tensor:
    """Time-averaged soft code assignment softmax(-distance): z (N, T, D), codebook (K, D) -> (N, K)."""
    n, t, d = z.shape
    flat = z.reshape(-1, d)
    sq = torch.addmm((codebook * codebook).sum(1) + (flat * flat).sum(1, keepdim=True), flat, codebook.t(),
                     beta=1.0, alpha=-2.0)
    p = F.softmax(-sq.clamp_min(1e-12).sqrt(), dim=1)
    return p.view(n, t, -1).mean(1)


def cmcm_pair(pa: Tensor, pb: Tensor, eps: float = 1e-5) -> Tensor:
    """L_ab from two (N, K) time-averaged soft assignments of the same N sequences."""
    s = pa @ torch.log(pb.t() + 1e-10) + pb @ torch.log(pa.t() + 1e-10)  # (N, N)
    shifted = s - s.min()
    log_den = torch.logaddexp(torch.logsumexp(shifted, dim=1), shifted.new_tensor(eps).log())
    return -(shifted.diagonal() - log_den).mean()


def cmcm_loss(z: dict[str, Tensor], codebooks: dict[str, Tensor], eps: float = 1e-5) -> Tensor:
    """0.5 * sum over unordered modality pairs of L_ab. z: modality -> (N, T, D) semantic features (with grad);
    codebooks: modality -> (K, D) the codebook each modality is quantised with (the same shared one, or its
    own when per-modality). Fewer than two modalities: 0."""
    names = list(z)
    total = z[names[0]].new_zeros(())
    if len(names) < 2:
        return total
    p = {m: soft_codes(z[m], codebooks[m].detach()) for m in names}
    for a, b in itertools.combinations(names, 2):
        total = total + cmcm_pair(p[a], p[b], eps)
    return 0.5 * total
