"""peft baselines on a CLIP backend: LoRA on the attention modules, LoHa / LoKr / VeRA on nn.Linear.

    report = apply_lora(model, r=4)                       # open_clip: every nn.MultiheadAttention
    match = lora_rank_for_budget(model, n_params=9_000)    # the LoRA rank nearest a parameter budget
    report = apply_loha(model, r=2)                       # open_clip: MLP c_fc / c_proj
    report = apply_lora(model, r=3, sites=adapted_modules(model, ma_cfg))   # where mode approx puts updates

Which layers each tuner can reach is the backend's knowledge (`model.lora_targets`,
`model.linear_targets`, from its layer roles); today:

* open_clip attention is `nn.MultiheadAttention`, whose forward calls a fused functional op on
  `in_proj_weight` and `out_proj.weight`. peft's LoRA has a dedicated MultiheadAttention layer
  (q/k/v through in_proj, plus out_proj); LoHa, LoKr and VeRA only wrap nn.Linear, and a wrapped
  `out_proj` would be bypassed by the fused call (the adapter would silently do nothing), so on
  open_clip they target the MLP (`c_fc`, `c_proj`) and asking for an attention child is an error.
* Hugging Face CLIP has plain nn.Linear q/k/v/out projections and MLP fc1/fc2: every tuner can
  target all of them.

Every function freezes the whole model first, then leaves only the adapter trainable, and returns
a `TuningReport` with the exact trainable count.

`sites` (LoRA): exact module names (inside `model.model`) -> the matrices to update there, e.g.
`workbench.methods.mode_approx.adapted_modules(model, cfg)`, so LoRA sits exactly where mode
approximation does. On an nn.MultiheadAttention, peft updates q, k, v together through the fused
`in_proj` (one A: d -> r, one B: r -> 3d) and always adds an `out_proj` LoRA alongside; a site
asking for ("q", "k", "v") only gets that `out_proj` LoRA frozen at B = 0 (no update, not trainable,
not counted), so only q, k, v change.

Dropout: peft's MultiheadAttention layer merges its update into the weights before the fused call,
so `dropout` acts on LoRA's nn.Linear sites only (open_clip: the MLP), never on attention.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn as nn

from workbench.checks import BadValue, check_number
from workbench.models import ClipBackend
from workbench.models.params import refuse_second_adapter

from .report import TuningReport, check_towers, freeze, make_report


def target_modules(model: ClipBackend, leaf_names: Sequence[str], towers: Sequence[str] = ("vision", "text"),
                   linear_only: bool = False) -> list[str]:
    """Full names (inside `model.model`) of the modules whose last name is in `leaf_names`."""
    towers = check_towers(towers)
    if isinstance(leaf_names, str):
        leaf_names = (leaf_names,)
    leaf_names = tuple(leaf_names)
    if len(set(leaf_names)) != len(leaf_names) or not all(isinstance(t, str) and t for t in leaf_names) \
            or not leaf_names:
        raise ValueError(f"targets={leaf_names!r}; accepted: distinct non-empty module names (at least one), or None "
                         "(the method's default)")
    modules = dict(model.model.named_modules())
    found = list(model.layers_named(leaf_names, towers))
    if not found:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in modules.items()
                         if isinstance(m, (nn.Linear, nn.MultiheadAttention))})
        raise ValueError(f"targets {tuple(leaf_names)!r} match no module of {model.name} in towers "
                         f"{towers}; accepted: linear/attention leaf names there: {', '.join(leaves)}")
    if linear_only:
        _check_linear_targets(model, found, modules)
    return found


def _check_linear_targets(model: ClipBackend, names: list[str], modules: dict[str, nn.Module]) -> None:
    for n in names:
        parent = modules[n.rsplit(".", 1)[0]] if "." in n else None
        if isinstance(parent, nn.MultiheadAttention):
            raise ValueError(
                f"target {n!r} sits inside nn.MultiheadAttention, whose fused forward bypasses a "
                f"wrapped {n.rsplit('.', 1)[-1]}: the adapter would do nothing. On open_clip use "
                f"LoRA (targets {model.lora_targets}) for attention, or the targets {model.linear_targets}")
        if not isinstance(modules[n], nn.Linear):
            raise ValueError(f"target {n!r} is a {type(modules[n]).__name__}; this tuner wraps nn.Linear only")


ATTN_MATRICES = ("q", "k", "v", "out")
QKV = ("q", "k", "v")


def lora_sites(model: ClipBackend, sites: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """`sites` checked against the model: module name (inside `model.model`) -> the matrices LoRA updates there.

    An nn.MultiheadAttention takes ("q", "k", "v", "out") or ("q", "k", "v") (peft updates q, k, v
    together through in_proj); an nn.Linear takes its one matrix kind (any name: the module decides)."""
    if not isinstance(sites, Mapping) or not sites:
        raise ValueError(f"sites={sites!r}; accepted: a non-empty mapping of module names (inside model.model) "
                         "to the matrices to update there, e.g. mode_approx.adapted_modules(model, cfg)")
    modules = dict(model.model.named_modules())
    out: dict[str, tuple[str, ...]] = {}
    for name, matrices in sites.items():
        m = modules.get(name)
        matrices = (matrices,) if isinstance(matrices, str) else tuple(matrices)
        if m is None:
            near = [n for n in modules if n.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]][:4]
            raise ValueError(f"site {name!r} is no module of {model.name}; accepted: full module names inside "
                             f"model.model (with that last name: {', '.join(near) or 'none'})")
        if isinstance(m, nn.MultiheadAttention):
            if set(matrices) not in (set(ATTN_MATRICES), set(QKV)) or len(set(matrices)) != len(matrices):
                raise ValueError(f"site {name!r} (nn.MultiheadAttention) asks for {matrices}; peft's LoRA updates "
                                 f"q, k, v together through in_proj: accepted {ATTN_MATRICES} or {QKV}")
            out[name] = tuple(k for k in ATTN_MATRICES if k in matrices)
        elif isinstance(m, nn.Linear):
            _check_linear_targets(model, [name], modules)
            if len(matrices) != 1:
                raise ValueError(f"site {name!r} (nn.Linear) asks for {matrices}; an nn.Linear is one matrix")
            out[name] = matrices
        else:
            raise ValueError(f"site {name!r} is a {type(m).__name__}; LoRA sites are nn.MultiheadAttention or "
                             "nn.Linear modules")
    return out


def _exactly(names: Sequence[str]) -> str:
    """A peft `target_modules` regex matching exactly `names` (a list would also match every name ending in
    ".<name>": open_clip's text blocks `transformer.resblocks.i` are a suffix of the vision tower's)."""
    return "|".join(re.escape(n) for n in names)


def _inject(model: ClipBackend, config) -> None:
    from peft import inject_adapter_in_model

    freeze(model)
    inject_adapter_in_model(config, model.model)


def _freeze_out_proj(model: ClipBackend, names: Sequence[str], adapter: str = "default") -> None:
    """The out_proj LoRA peft adds beside every nn.MultiheadAttention's in_proj one, held at B = 0 and frozen:
    its update B A stays exactly zero, so the attention output projection keeps its weights."""
    for n in names:
        out_proj = model.model.get_submodule(n).get_base_layer().out_proj
        for part in (out_proj.lora_A[adapter], out_proj.lora_B[adapter]):
            part.requires_grad_(False)
        with torch.no_grad():
            out_proj.lora_B[adapter].weight.zero_()


def _check_rank(r: int, name: str = "r") -> None:
    check_number(r, name, integer=True, ge=1)


def _check_fits(model: ClipBackend, names: list[str], r: int, method: str) -> None:
    """A rank above the smaller side of a target matrix adds parameters and nothing an update can express
    (its rank is at most that side): refused, naming the layer."""
    modules = dict(model.model.named_modules())
    for n in names:
        m = modules[n]
        side = m.embed_dim if isinstance(m, nn.MultiheadAttention) else min(m.in_features, m.out_features) \
            if isinstance(m, nn.Linear) else None
        if side is not None and r > side:
            raise BadValue(f"{method} r={r} is larger than {n} ({type(m).__name__}, smaller side {side}) of "
                           f"{model.name}: an update of that matrix has rank at most {side}; accepted: r <= {side}")


def _check_knobs(alpha: float | None, dropout: float = 0.0) -> None:
    if alpha is not None:
        check_number(alpha, "alpha", gt=0)
    check_number(dropout, "dropout", ge=0, lt=1)


def _lora_plan(model: ClipBackend, targets: Sequence[str] | None, towers: Sequence[str],
               sites: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """Module name -> matrices LoRA updates: the given `sites`, or every module `targets` names in `towers`."""
    if sites is None:
        modules = dict(model.model.named_modules())
        return {n: ATTN_MATRICES if isinstance(modules[n], nn.MultiheadAttention) else ()
                for n in target_modules(model, model.lora_targets if targets is None else targets, towers)}
    if targets is not None:
        raise ValueError("give LoRA's targets (leaf names) or its sites (module names), not both")
    return lora_sites(model, sites)


def apply_lora(model: ClipBackend, r: int, alpha: float | None = None, dropout: float = 0.0,
               targets: Sequence[str] | None = None, towers: Sequence[str] = ("vision", "text"),
               rslora: bool = False, sites: Mapping[str, Sequence[str]] | None = None) -> TuningReport:
    """peft LoRA on the attention modules (in place); the update is scaled by alpha / r.

    alpha defaults to r (scaling 1, like mode approximation's scale). `rslora=True` scales by
    alpha / sqrt(r) instead (rank-stabilised LoRA, Kalajdzievski 2023) with alpha defaulting to 1,
    so scaling is 1 at r = 1 and the update does not grow with r at a fixed learning rate.
    `sites`: exact module names -> matrices instead of `targets` / `towers` (see the module docstring);
    `dropout` acts on nn.Linear sites only (peft merges a MultiheadAttention's update before its call).
    """
    from peft import LoraConfig

    _check_rank(r)
    _check_knobs(alpha, dropout)
    refuse_second_adapter(model, "LoRA")
    plan = _lora_plan(model, targets, towers, sites)
    names = list(plan)
    _check_fits(model, names, r, "LoRA")
    alpha = float((1 if rslora else r) if alpha is None else alpha)
    _inject(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=_exactly(names),
                              use_rslora=rslora))
    qkv_only = [n for n, m in plan.items() if m == QKV]
    _freeze_out_proj(model, qkv_only)
    details = {"sites": {n: plan[n] for n in names}} if sites is not None else {}
    return make_report("lora", model, names, r=r, alpha=alpha, dropout=dropout, rslora=rslora, **details)


def apply_loha(model: ClipBackend, r: int, alpha: float | None = None,
               targets: Sequence[str] | None = None, towers: Sequence[str] = ("vision", "text"),
               ) -> TuningReport:
    """peft LoHa (Hadamard product of two low-rank pairs) on nn.Linear layers (in place)."""
    from peft import LoHaConfig

    _check_rank(r)
    _check_knobs(alpha)
    refuse_second_adapter(model, "LoHa")
    names = target_modules(model, model.linear_targets if targets is None else targets, towers, linear_only=True)
    _check_fits(model, names, r, "LoHa")
    alpha = float(r if alpha is None else alpha)
    _inject(model, LoHaConfig(r=r, alpha=alpha, target_modules=_exactly(names)))
    return make_report("loha", model, names, r=r, alpha=alpha)


def apply_lokr(model: ClipBackend, r: int, alpha: float | None = None,
               targets: Sequence[str] | None = None, towers: Sequence[str] = ("vision", "text"),
               ) -> TuningReport:
    """peft LoKr (Kronecker product, low-rank second factor) on nn.Linear layers (in place)."""
    from peft import LoKrConfig

    _check_rank(r)
    _check_knobs(alpha)
    refuse_second_adapter(model, "LoKr")
    names = target_modules(model, model.linear_targets if targets is None else targets, towers, linear_only=True)
    _check_fits(model, names, r, "LoKr")
    alpha = float(r if alpha is None else alpha)
    _inject(model, LoKrConfig(r=r, alpha=alpha, target_modules=_exactly(names)))
    return make_report("lokr", model, names, r=r, alpha=alpha)


def apply_vera(model: ClipBackend, r: int, targets: Sequence[str] | None = None,
               towers: Sequence[str] = ("vision", "text"), projection_seed: int = 0) -> TuningReport:
    """peft VeRA (frozen shared random A, B; trainable scaling vectors) on nn.Linear layers (in place).

    VeRA keeps its shared random projections on the tuner object, so peft refuses
    `inject_adapter_in_model`; the tuner class modifies `model.model` in place all the same, and
    every adapted layer holds a reference to the shared buffers (they move with `.to(device)`).
    """
    from peft import VeraConfig
    from peft.tuners.vera import VeraModel

    _check_rank(r)
    check_number(projection_seed, "projection_seed", integer=True, ge=0)
    refuse_second_adapter(model, "VeRA")
    names = target_modules(model, model.linear_targets if targets is None else targets, towers, linear_only=True)
    _check_fits(model, names, r, "VeRA")
    freeze(model)
    VeraModel(model.model, VeraConfig(r=r, target_modules=_exactly(names), projection_prng_key=projection_seed),
              "default")
    return make_report("vera", model, names, r=r, projection_seed=projection_seed)


# ---------------------------------------------------------------- LoRA at a parameter budget
def _lora_size(module: nn.Module, matrices: Sequence[str] = ATTN_MATRICES) -> int:
    """Trainable LoRA parameters per unit of rank for one target module (A: r x in, B: out x r)."""
    if isinstance(module, nn.MultiheadAttention):  # peft: in_proj (d -> 3d) and out_proj (d -> d)
        d = module.embed_dim
        return (d + 3 * d) + ((d + d) if "out" in matrices else 0)  # q, k, v only: out_proj's LoRA frozen
    if isinstance(module, nn.Linear):
        return module.in_features + module.out_features
    raise TypeError(f"LoRA size of a {type(module).__name__} is not defined here")


def lora_param_count(model: ClipBackend, r: int, targets: Sequence[str] | None = None,
                     towers: Sequence[str] = ("vision", "text"), sites: Mapping[str, Sequence[str]] | None = None,
                     ) -> int:
    """Exact trainable count `apply_lora(model, r, targets=, towers=, sites=)` gives, without touching the model."""
    _check_rank(r)
    modules = dict(model.model.named_modules())
    plan = _lora_plan(model, targets, towers, sites)
    return r * sum(_lora_size(modules[n], m or ATTN_MATRICES) for n, m in plan.items())


@dataclass(frozen=True)
class RankMatch:
    """The LoRA rank whose trainable count is nearest a budget (rank >= 1, so small budgets overshoot)."""

    rank: int
    params: int  # LoRA trainable parameters at that rank
    budget: int

    @property
    def ratio(self) -> float:
        return self.params / max(self.budget, 1)


def lora_rank_for_budget(model: ClipBackend, n_params: int, targets: Sequence[str] | None = None,
                         towers: Sequence[str] = ("vision", "text"), sites: Mapping[str, Sequence[str]] | None = None,
                         ) -> RankMatch:
    """The LoRA rank r >= 1 minimising |lora_param_count(r) - n_params| (ties: the smaller r)."""
    check_number(n_params, "n_params", integer=True, ge=1)  # a parameter budget
    per_rank = lora_param_count(model, 1, targets, towers, sites)  # the count is linear in r
    lo = max(1, n_params // per_rank)
    r = min((lo, lo + 1), key=lambda k: (abs(k * per_rank - n_params), k))
    return RankMatch(rank=r, params=r * per_rank, budget=int(n_params))
