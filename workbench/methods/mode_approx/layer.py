"""Mode-approximation layers: shared factors and the wrappers that add their update to a weight.

For one adapted matrix W (d_out x d_in) in a tower of hidden width d, split into
n_out x n_in blocks of d x d (n = 1 for attention, 4 on the wide side of a 4x MLP), each block
(o, i) has its own mode vector lambda[o, i] (length R) and

    y_o += scale * V( dropout(U(x_i)) @ M[o, i] )         activation form (training)
    delta_W[o, i] = scale * V.weight @ M[o, i]^T @ U.weight   weight form (merging)

with M = C x_3 lambda (= sum_k C[:, :, k] * lambda[k], R x R) for the Tucker form and
M = diag(lambda) for the CP form. For an MLP this is the authors' "R x 4R" matrix of four
mode vectors, laid out here as contiguous blocks (their code reshapes an (R, R, 4) tensor, which
interleaves the four slices; the parameter count is the same).

The authors' code applies dropout after the core (dropout(U(x) @ M)); we follow the
specification y += V(dropout(U(x)) @ M). Both are the identity in eval mode and merge alike.
In self-attention q, k and v read the same input through the same U, so they share one U pass
and one dropout draw (as LoRA on a fused in_proj shares one dropout of x).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GATE_FACTOR, GATE_INIT_STD, ModeApproxConfig


def width_key(d: int) -> str:
    return f"d{d}"


class ModeFactors(nn.Module):
    """U_d (d -> R, no bias) and V_d (R -> d, no bias, zero) per hidden width d; one core C.

    One instance serves the whole model when sharing is on (towers of different widths get one
    U/V pair per distinct width and share the core), or one transformer block when it is off.
    Built on the CPU from a seeded CPU generator; `inject_mode_approx` moves it to the model.
    Init as in the authors' code: U like nn.Linear, V zero, core xavier-uniform (+-sqrt(3)/R).
    """

    def __init__(self, widths: Iterable[int], rank: int, form: str, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.rank, self.form = rank, form
        self.U, self.V = nn.ModuleDict(), nn.ModuleDict()
        for d in sorted(set(widths)):
            u = nn.Linear(d, rank, bias=False, dtype=dtype)
            bound = 1.0 / math.sqrt(d)  # nn.Linear's default init, drawn from our generator
            nn.init.uniform_(u.weight, -bound, bound, generator=generator)
            v = nn.Linear(rank, d, bias=False, dtype=dtype)
            nn.init.zeros_(v.weight)  # zero V: the update starts at exactly zero
            self.U[width_key(d)], self.V[width_key(d)] = u, v
        if form == "tucker":
            self.core = nn.Parameter(torch.empty(rank, rank, rank, dtype=dtype))
            nn.init.xavier_uniform_(self.core, generator=generator)
        else:
            self.register_parameter("core", None)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(k[1:]) for k in self.U.keys())

    def mode_matrices(self, lam: torch.Tensor) -> torch.Tensor:
        """Mode vectors (..., R) -> core matrices M (..., R, R): C x_3 lambda, or diag(lambda) for CP."""
        if self.core is None:
            return torch.diag_embed(lam)
        return torch.einsum("abk,...k->...ab", self.core, lam)

    def core_matrix(self, lam: torch.Tensor) -> torch.Tensor:
        """Mode vectors (n_out, n_in, R) -> one (n_in * R, n_out * R) matrix: block (i, o) = M[o, i]."""
        n_out, n_in, R = lam.shape
        return self.mode_matrices(lam).permute(1, 2, 0, 3).reshape(n_in * R, n_out * R)

    def add_delta(self, y: torch.Tensor, x: torch.Tensor, lam: torch.Tensor, d: int, dropout: nn.Module,
                  scale: float) -> torch.Tensor:
        """y + the activation-form update: x (..., n_in * d), y and the result (..., n_out * d).

        U runs on every d-wide input block; the product with V is fused with the add (addmm),
        the scale folded into V's small weight, so no extra pass over the activations is spent.
        With one input block (attention, fused q/k/v, MLP up-projection) the core is folded into
        V too: one (R, n_out * d) matrix, two matmuls per update. With several input blocks (MLP
        down-projection) the core matmul mixes the blocks first, then V.
        """
        n_out, n_in, R = lam.shape
        U, V = self.U[width_key(d)].weight, self.V[width_key(d)].weight  # (R, d), (d, R)
        lead = x.shape[:-1]
        z = dropout(F.linear(x.reshape(-1, d), U)).reshape(-1, n_in * R)  # (N, n_in * R)
        if n_in == 1:
            M = self.mode_matrices(lam[:, 0]).to(z.dtype)  # (n_out, R, R)
            W = torch.einsum("oab,db->aod", M, V * scale).reshape(R, n_out * d)
            out = torch.addmm(y.reshape(-1, n_out * d), z, W)  # (N, n_out * d)
        else:
            h = z @ self.core_matrix(lam).to(z.dtype)  # (N, n_out * R)
            out = torch.addmm(y.reshape(-1, d), h.reshape(-1, R), V.t() * scale)  # (N * n_out, d)
        return out.reshape(*lead, n_out * d)

    def delta_weight(self, lam: torch.Tensor, d: int, scale: float) -> torch.Tensor:
        """Weight-form update (n_out * d, n_in * d): block (o, i) = scale * V @ M[o, i]^T @ U."""
        n_out, n_in, _ = lam.shape
        U, V = self.U[width_key(d)].weight, self.V[width_key(d)].weight  # (R, d), (d, R)
        M = self.mode_matrices(lam)  # (n_out, n_in, R, R)
        W = torch.einsum("pb,oiab,aq->opiq", V, M, U)  # (n_out, d, n_in, d)
        return W.reshape(n_out * d, n_in * d) * scale


def init_modes(shape: Sequence[int], n_modes: int, generator: torch.Generator,
               dtype: torch.dtype) -> nn.Parameter:
    """Mode vectors, xavier-uniform over the module's (R, n_modes) matrix as in the authors' code."""
    rank = shape[-1]
    bound = math.sqrt(6.0 / (rank + n_modes))
    t = torch.empty(*shape, dtype=dtype)
    nn.init.uniform_(t, -bound, bound, generator=generator)
    return nn.Parameter(t)


class OutputGate(nn.Module):
    """The authors' gated transformation of an attention output: y + 0.1 * (y * scale + shift)."""

    def __init__(self, dim: int, generator: torch.Generator, dtype: torch.dtype):
        super().__init__()
        self.scale = nn.Parameter(torch.empty(dim, dtype=dtype))
        self.shift = nn.Parameter(torch.empty(dim, dtype=dtype))
        for p in (self.scale, self.shift):
            nn.init.normal_(p, 0.0, GATE_INIT_STD, generator=generator)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + GATE_FACTOR * (y * self.scale + self.shift)

    def gain(self) -> torch.Tensor:
        """y' = y * gain + 0.1 * shift: the gate as a per-output affine map (for merging)."""
        return 1.0 + GATE_FACTOR * self.scale


class _Wrapper(nn.Module):
    """Common part of the wrappers: base layer, factors reference, merge state, attribute fallthrough."""

    workbench_adapter = "mode approximation"  # what workbench.models.params.existing_adapter reports

    def __init__(self, base_layer: nn.Module, factors: ModeFactors | None, width: int,
                 cfg: ModeApproxConfig):
        super().__init__()
        self.base_layer = base_layer
        object.__setattr__(self, "_factors", factors)  # not registered: the owner registers it once
        self.width = width
        self.scale = float(cfg.scale)
        self.mode_approx_dropout = nn.Dropout(cfg.dropout)
        self.merged = False

    @property
    def factors(self) -> ModeFactors | None:
        return self._factors

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_layer":
                raise
            return getattr(self.base_layer, name)  # weight, bias, embed_dim, ...: like the base layer

    def _add_update(self, y: torch.Tensor, x: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return self.factors.add_delta(y, x, lam, self.width, self.mode_approx_dropout, self.scale)

    def _weight(self, lam: torch.Tensor) -> torch.Tensor:
        return self.factors.delta_weight(lam, self.width, self.scale)

    def merge(self) -> None:
        if self.merged:
            raise RuntimeError(f"{type(self).__name__} is already merged; unmerge() it first")
        with torch.no_grad():
            self._merge(sign=1)
        self.merged = True

    def unmerge(self) -> None:
        if not self.merged:
            raise RuntimeError(f"{type(self).__name__} is not merged; nothing to unmerge")
        with torch.no_grad():
            self._merge(sign=-1)
        self.merged = False

    def _merge(self, sign: int) -> None:
        raise NotImplementedError


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, delta: torch.Tensor | None,
          gate: OutputGate | None, sign: int) -> None:
    """In place: W <- g * (W + dW), b <- g * b + 0.1 * shift (sign=+1), or its inverse (sign=-1)."""
    if gate is not None and bias is None:
        raise RuntimeError("cannot merge a gate's shift into a layer without bias")
    if sign > 0:
        if delta is not None:
            weight.add_(delta.to(weight.dtype))
        if gate is not None:
            g = gate.gain().to(weight.dtype)
            weight.mul_(g[:, None])
            bias.mul_(g).add_(GATE_FACTOR * gate.shift.to(bias.dtype))
    else:
        if gate is not None:
            g = gate.gain().to(weight.dtype)
            weight.div_(g[:, None])
            bias.sub_(GATE_FACTOR * gate.shift.to(bias.dtype)).div_(g)
        if delta is not None:
            weight.sub_(delta.to(weight.dtype))


class ModeApproxLinear(_Wrapper):
    """nn.Linear (d_out x d_in, both multiples of the tower width d) with a mode-approximation update.

    `adapt=False` with `gate=True` wraps an attention output projection only for the gate.
    """

    def __init__(self, base_layer: nn.Linear, factors: ModeFactors | None, width: int,
                 cfg: ModeApproxConfig, generator: torch.Generator, adapt: bool = True,
                 gate: bool = False):
        super().__init__(base_layer, factors, width, cfg)
        w = base_layer.weight
        n_out, n_in = base_layer.out_features // width, base_layer.in_features // width
        # created on the CPU from the (CPU) generator, then moved next to the base weight
        lam = init_modes((n_out, n_in, cfg.rank), n_out * n_in, generator, w.dtype) if adapt else None
        self.mode_approx_lambda = lam  # (n_out, n_in, R) or None
        self.mode_approx_gate = OutputGate(base_layer.out_features, generator, w.dtype) if gate else None
        self.to(w.device).train(base_layer.training)  # new modules start in train mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base_layer(x)  # (..., d_out)
        if self.merged:
            return y
        if self.mode_approx_lambda is not None:
            y = self._add_update(y, x, self.mode_approx_lambda)
        return self.mode_approx_gate(y) if self.mode_approx_gate is not None else y

    def delta_weight(self) -> torch.Tensor | None:
        """The update as a (d_out, d_in) matrix (without the gate), or None when not adapted."""
        return None if self.mode_approx_lambda is None else self._weight(self.mode_approx_lambda)

    def _merge(self, sign: int) -> None:
        base = self.base_layer
        _fold(base.weight, base.bias, self.delta_weight(), self.mode_approx_gate, sign)

    def extra_repr(self) -> str:
        lam = self.mode_approx_lambda
        modes = "none" if lam is None else "x".join(map(str, lam.shape[:2]))
        return f"width={self.width}, mode_blocks={modes}, gate={self.mode_approx_gate is not None}"


QKV = ("q", "k", "v")


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """nn.MultiheadAttention masks (bool: True = do not attend; float: added) -> additive float."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


def _attention_mask(attn_mask, key_padding_mask, B: int, H: int, L: int, S: int,
                    dtype: torch.dtype) -> torch.Tensor | None:
    """One additive mask broadcastable to (B, H, L, S), from MHA's attn_mask and key_padding_mask."""
    mask = _additive_mask(attn_mask, dtype)
    if mask is not None and mask.ndim == 3:  # (B * H, L, S)
        mask = mask.view(B, H, L, S)
    kpm = _additive_mask(key_padding_mask, dtype)
    if kpm is not None:
        kpm = kpm.view(B, 1, 1, S)
        mask = kpm if mask is None else mask + kpm
    return mask


class ModeApproxMultiheadAttention(_Wrapper):
    """nn.MultiheadAttention (fused in_proj, as in open_clip) with updates on q, k, v and out.

    The fused call of nn.MultiheadAttention takes its weights as tensors, so the wrapper runs
    the same attention itself: q/k/v = in_proj(x) + updates, scaled-dot-product attention
    with the same masks, out_proj + update (+ gate). Merged, it calls the base module.
    """

    def __init__(self, base_layer: nn.MultiheadAttention, factors: ModeFactors | None, width: int,
                 matrices: Sequence[str], cfg: ModeApproxConfig, generator: torch.Generator,
                 gate: bool = False):
        super().__init__(base_layer, factors, width, cfg)
        w = base_layer.in_proj_weight
        self.mode_approx_lambda = nn.ParameterDict({
            m: init_modes((1, 1, cfg.rank), len(matrices), generator, w.dtype) for m in matrices})
        self.mode_approx_gate = OutputGate(width, generator, w.dtype) if gate else None
        self.to(w.device).train(base_layer.training)  # new modules start in train mode

    @staticmethod
    def check_supported(mha: nn.MultiheadAttention) -> str | None:
        """Why `mha` cannot be wrapped, or None when it can."""
        if not mha._qkv_same_embed_dim or mha.in_proj_weight is None:
            return "kdim/vdim differ from embed_dim (separate q/k/v weights)"
        if mha.bias_k is not None or mha.add_zero_attn:
            return "add_bias_kv / add_zero_attn"
        return None

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        base = self.base_layer
        if self.merged:
            return base(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                        attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)
        # is_causal is only a hint in nn.MultiheadAttention: attn_mask holds the causal mask
        unbatched = query.ndim == 2
        self_attn = query is key and key is value
        if unbatched:
            query, key, value = query[None], key[None], value[None]
        elif not base.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if self_attn:
            key = value = query
        q, k, v = self._project(query, key, value, self_attn)  # (B, L|S, d) each
        out, weights = self._attend(q, k, v, attn_mask, key_padding_mask, need_weights, average_attn_weights)
        y = F.linear(out, base.out_proj.weight, base.out_proj.bias)  # (B, L, d)
        if "out" in self.mode_approx_lambda:
            y = self._add_update(y, out, self.mode_approx_lambda["out"])
        if self.mode_approx_gate is not None:
            y = self.mode_approx_gate(y)
        if unbatched:
            return y[0], (weights[0] if weights is not None else None)
        return (y if base.batch_first else y.transpose(0, 1)), weights

    def _project(self, query, key, value, self_attn: bool):
        base = self.base_layer
        W, b = base.in_proj_weight, base.in_proj_bias  # (3d, d), (3d,)
        lam = self.mode_approx_lambda
        if self_attn:  # one fused matmul, as nn.MultiheadAttention does
            qkv = F.linear(query, W, b)  # (B, L, 3d)
            if all(m in lam for m in QKV):
                # q, k and v read the same input through the same U: one U pass, one dropout
                # draw, one core matmul (R -> 3R), one V pass added into the fused projection.
                modes = torch.cat([lam[m] for m in QKV])  # (3, 1, R): three output blocks
                return list(self._add_update(qkv, query, modes).chunk(3, dim=-1))
            qkv = list(qkv.chunk(3, dim=-1))
        else:
            bs = b.chunk(3) if b is not None else (None,) * 3
            qkv = [F.linear(x, w, bb) for x, w, bb in zip((query, key, value), W.chunk(3), bs)]
        for i, (m, x) in enumerate(zip(QKV, (query, key, value))):
            if m in lam:
                qkv[i] = self._add_update(qkv[i], x, lam[m])
        return qkv

    def _attend(self, q, k, v, attn_mask, key_padding_mask, need_weights: bool, average: bool):
        base = self.base_layer
        B, L, d = q.shape
        S, H = k.shape[1], base.num_heads
        q, k, v = (t.unflatten(-1, (H, d // H)).transpose(1, 2) for t in (q, k, v))  # (B, H, L|S, hd)
        mask = _attention_mask(attn_mask, key_padding_mask, B, H, L, S, q.dtype)
        p = base.dropout if self.training else 0.0
        if not need_weights:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // H)  # (B, H, L, S)
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(dim=-1)
            out = F.dropout(weights, p=p) @ v
            weights = weights.mean(dim=1) if average else weights
        return out.transpose(1, 2).reshape(B, L, d), weights  # (B, L, d)

    def delta_weights(self) -> dict[str, torch.Tensor]:
        """Per adapted projection ("q", "k", "v", "out"), its (d, d) update."""
        return {m: self._weight(lam) for m, lam in self.mode_approx_lambda.items()}

    def _merge(self, sign: int) -> None:
        base, d = self.base_layer, self.width
        deltas = self.delta_weights()
        for i, m in enumerate(QKV):
            if m in deltas:
                base.in_proj_weight[i * d:(i + 1) * d] += sign * deltas[m].to(base.in_proj_weight.dtype)
        _fold(base.out_proj.weight, base.out_proj.bias, deltas.get("out"), self.mode_approx_gate, sign)

    def extra_repr(self) -> str:
        return (f"width={self.width}, matrices={tuple(self.mode_approx_lambda.keys())}, "
                f"gate={self.mode_approx_gate is not None}")
