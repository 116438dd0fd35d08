"""Injecting mode-approximation adapters into a CLIP backend, and what to do with them after.

    report = inject_mode_approx(model, ModeApproxConfig(rank=8))   # wraps, freezes the rest
    print(report); print_trainable_parameters(model)
    ... train with workbench.engine.train(objective_for(model, cfg), ...) ...
    merge(model)      # fold the updates into the weights: the plain model's speed
    unmerge(model)    # back to base weights + adapters
    unload(model)     # remove the adapters (merge=True keeps their effect in the weights)

Where the adapters go (in the blocks of `model.vision_blocks` / `model.text_blocks`): every
`nn.MultiheadAttention` (q, k, v from its fused in_proj, and out_proj), and the nn.Linear layers
the backend names in `model.matrix_kinds` (open_clip: `mlp.c_fc` / `mlp.c_proj`; Hugging Face
CLIP: `self_attn.{q,k,v,out}_proj` and `mlp.fc1` / `mlp.fc2`).

Factors: with `share=True` one `ModeFactors` for the model, registered as
`model.mode_approx_shared`, holding one U/V pair per distinct hidden width (ViT-B-32: 768 for
vision, 512 for text) and one core shared by all; with `share=False` one per transformer
block, registered as `block.mode_approx_factors`. Every adapter parameter's name contains
"mode_approx_".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from workbench.checks import BadValue
from workbench.engine import Loss
from workbench.models import ClipBackend, count_all, count_trainable
from workbench.models.params import AdapterError, refuse_second_adapter

from .config import CONTEXT_WEIGHT, KINDS, MATRICES, PREFIX, TOWERS, ModeApproxConfig
from .layer import ModeApproxLinear, ModeApproxMultiheadAttention, ModeFactors, _Wrapper

ATTN_MATRICES = ("q", "k", "v", "out")


# -- finding the adaptable matrices ------------------------------------------------------------
class Site(NamedTuple):
    """An adaptable module of one transformer block."""

    name: str  # relative to the block: "attn", "mlp.c_fc", "self_attn.q_proj", ...
    module: nn.Module  # the base module (nn.MultiheadAttention or nn.Linear), unwrapped
    matrices: tuple[str, ...]  # ("q", "k", "v", "out") for a fused attention, else one kind


def block_sites(block: nn.Module, leaf_kinds: Mapping[str, str]) -> list[Site]:
    """The adaptable modules of a transformer block (wrapped or not): every nn.MultiheadAttention,
    and the nn.Linear layers whose leaf name is in `leaf_kinds` (the backend's `matrix_kinds`)."""
    sites: list[Site] = []
    covered: list[str] = []
    for name, m in block.named_modules():
        if any(name.startswith(c + ".") for c in covered):
            continue
        base = m.base_layer if isinstance(m, _Wrapper) else m
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(base, nn.MultiheadAttention):
            sites.append(Site(name, base, ATTN_MATRICES))
        elif isinstance(base, nn.Linear) and leaf in leaf_kinds:
            sites.append(Site(name, base, (leaf_kinds[leaf],)))
        else:
            continue
        covered.append(name)
    return sites


def site_width(site: Site) -> int:
    """The hidden width d that a site's matrices are blocks of."""
    m = site.module
    if isinstance(m, nn.MultiheadAttention):
        return int(m.embed_dim)
    return int(m.out_features if site.matrices[0] == "fc2" else m.in_features)


def tower_blocks(model: nn.Module, tower: str) -> nn.ModuleList:
    if tower not in TOWERS:
        raise ValueError(f"tower={tower!r}; accepted: {TOWERS}")
    return model.vision_blocks if tower == "vision" else model.text_blocks


def describe_sites(model: nn.Module, towers=TOWERS) -> str:
    """What can be adapted, per tower: "vision (width 128): q, k, v, out (attn), fc1 (mlp.c_fc), ..."."""
    lines = []
    for tower in towers:
        sites = block_sites(tower_blocks(model, tower)[0], model.matrix_kinds)
        parts = [f"{', '.join(s.matrices)} ({s.name}: {type(s.module).__name__})" for s in sites]
        width = site_width(sites[0]) if sites else "?"
        lines.append(f"{tower} (width {width}): {'; '.join(parts) or 'nothing'}")
    return "\n".join(lines)


# -- injection ---------------------------------------------------------------------------------
@dataclass
class InjectionReport:
    """What `inject_mode_approx` did."""

    config: ModeApproxConfig
    adapted: dict[str, dict[str, list[str]]]  # tower -> matrix kind -> wrapped module names
    widths: dict[str, int]  # tower -> hidden width
    mode_vectors: int  # number of mode vectors (each of length R)
    adapter_params: int  # parameters whose name contains "mode_approx_"
    trainable_params: int  # adapter_params + what `config.train` kept trainable
    total_params: int  # all parameters of the model, adapters included
    extra_trainable: tuple[str, ...] = field(default_factory=tuple)  # non-adapter trainable names

    def __str__(self) -> str:
        c = self.config
        lines = [f"mode approximation: form={c.form}, R={c.rank}, share={c.share}, gated={c.gated}"]
        for tower, kinds in self.adapted.items():
            counts = ", ".join(f"{k} x{len(v)}" for k, v in kinds.items())
            lines.append(f"  {tower} (width {self.widths[tower]}): {counts}")
        lines.append(f"  mode vectors: {self.mode_vectors}; adapter params: {self.adapter_params:,}; "
                     f"trainable: {self.trainable_params:,} of {self.total_params:,} "
                     f"({100 * self.trainable_params / self.total_params:.4f}%)")
        return "\n".join(lines)


class _Planned(NamedTuple):
    tower: str
    block: nn.Module
    block_name: str
    site: Site
    matrices: tuple[str, ...]  # the site's matrices to adapt (may be empty when only gated)
    gate: bool
    width: int


def _plan(model: nn.Module, cfg: ModeApproxConfig) -> list[_Planned]:
    """Which site of which block gets which matrices; checks the targets against the model."""
    names = {id(m): n for n, m in model.named_modules()}
    plan, found = [], {t: set() for t in cfg.towers}
    for tower in cfg.towers:
        wanted = cfg.matrices(tower)
        for block in tower_blocks(model, tower):
            for site in block_sites(block, model.matrix_kinds):
                found[tower].update(site.matrices)
                chosen = tuple(m for m in site.matrices if m in wanted)
                gate = cfg.gated and tower == "text" and "out" in site.matrices
                if chosen or gate:
                    plan.append(_Planned(tower, block, names[id(block)], site, chosen, gate,
                                         site_width(site)))
    for target in cfg.targets:
        towers, kind = cfg._parse_target(target)
        if not any(set(KINDS[kind]) & found[t] for t in towers):
            raise ValueError(f"target {target!r} matches no module of {getattr(model, 'name', 'the model')}; "
                             f"what exists:\n{describe_sites(model, cfg.towers)}")
    return plan


def adapted_modules(model: nn.Module, cfg: ModeApproxConfig) -> dict[str, tuple[str, ...]]:
    """Where `inject_mode_approx(model, cfg)` puts updates, without touching the model: the name of each
    adapted module inside `model.model` (the names peft targets) -> its matrices that get an update, in
    canonical order (an nn.MultiheadAttention: some of q, k, v, out; an nn.Linear: its one kind). A site
    that only gets the text gate (gated=True, no targeted matrix there) holds no update and is left out.

        adapted_modules(model, ModeApproxConfig.placed("paper"))
        # {"visual.transformer.resblocks.0.attn": ("q", "k", "v", "out"),
        #  "visual.transformer.resblocks.0.mlp.c_fc": ("fc1",), ...,
        #  "transformer.resblocks.0.attn": ("q", "k", "v"), ...}
    """
    inner = {id(m): n for n, m in model.model.named_modules()}
    return {f"{inner[id(p.block)]}.{p.site.name}": p.matrices for p in _plan(model, cfg) if p.matrices}


def _check_site(p: _Planned) -> None:
    m = p.site.module
    if isinstance(m, nn.MultiheadAttention):
        why = ModeApproxMultiheadAttention.check_supported(m)
        if why:
            raise NotImplementedError(f"{p.block_name}.{p.site.name}: nn.MultiheadAttention with {why} "
                                      "is not supported")
    elif m.in_features % p.width or m.out_features % p.width:
        raise ValueError(
            f"{p.block_name}.{p.site.name} is {m.out_features}x{m.in_features}, not a multiple of the "
            f"tower width {p.width} in both dimensions, so it cannot be split into d x d blocks; "
            f"leave {p.site.matrices[0]!r} out of targets (e.g. targets=('attn',))")


def _check_rank(model: nn.Module, plan: list[_Planned], cfg: ModeApproxConfig) -> None:
    """R above a tower's hidden width d gives factors U (d -> R), V (R -> d) and a core R^3 larger than the
    matrices they adapt, and no more expressive update (its rank is at most d): refused."""
    widths = {p.tower: p.width for p in plan if p.matrices}
    if widths and cfg.rank > min(widths.values()):
        tower, width = min(widths.items(), key=lambda kv: kv[1])
        name = getattr(model, "name", "the model")
        raise BadValue(f"ModeApproxConfig.rank={cfg.rank} is larger than the hidden width {width} of the {tower} "
                       f"tower of {name}: an update of a {width} x {width} block has rank at most {width}, so a larger "
                       f"R only adds parameters (U, V and an R^3 core: {cfg.rank ** 3:,} values for the core "
                       f"alone); accepted: rank <= {width}")


def _factors_for(model: nn.Module, plan: list[_Planned], cfg: ModeApproxConfig,
                 gen: torch.Generator, dtype: torch.dtype, device) -> dict[int, ModeFactors]:
    """id(block) -> the factors its matrices use; registers them on the model or on the blocks."""
    adapted = [p for p in plan if p.matrices]
    if cfg.share:
        if not adapted:
            return {}
        shared = ModeFactors({p.width for p in adapted}, cfg.rank, cfg.form, gen, dtype).to(device)
        model.mode_approx_shared = shared
        return {id(p.block): shared for p in adapted}
    out: dict[int, ModeFactors] = {}
    for p in adapted:
        if id(p.block) not in out:
            f = ModeFactors([p.width], cfg.rank, cfg.form, gen, dtype).to(device)
            p.block.mode_approx_factors = f
            out[id(p.block)] = f
    return out


def _wrap(p: _Planned, factors: ModeFactors | None, cfg: ModeApproxConfig, gen: torch.Generator) -> _Wrapper:
    if isinstance(p.site.module, nn.MultiheadAttention):
        return ModeApproxMultiheadAttention(p.site.module, factors, p.width, p.matrices, cfg, gen, gate=p.gate)
    return ModeApproxLinear(p.site.module, factors, p.width, cfg, gen, adapt=bool(p.matrices), gate=p.gate)


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def _wrap_all(model: nn.Module, plan: list[_Planned], cfg: ModeApproxConfig) -> dict[str, dict[str, list[str]]]:
    """Create the factors, wrap every planned site; returns tower -> kind -> wrapped module names."""
    ref = next(model.parameters())
    gen = torch.Generator().manual_seed(cfg.seed)
    factors = _factors_for(model, plan, cfg, gen, ref.dtype, ref.device)
    adapted: dict[str, dict[str, list[str]]] = {t: {} for t in cfg.towers}
    for p in plan:
        _set_submodule(p.block, p.site.name, _wrap(p, factors.get(id(p.block)), cfg, gen))
        for m in p.matrices:
            adapted[p.tower].setdefault(m, []).append(f"{p.block_name}.{p.site.name}")
    return adapted


def inject_mode_approx(model: nn.Module, cfg: ModeApproxConfig) -> InjectionReport:
    """Wrap the targeted matrices of `model` (a ClipBackend) in place and freeze everything else.

    Raises ValueError for targets that match nothing (listing what exists) and RuntimeError
    when the model already holds adapters.
    """
    if not isinstance(cfg, ModeApproxConfig):
        raise TypeError(f"cfg must be a ModeApproxConfig, got {type(cfg).__name__}")
    if not isinstance(model, ClipBackend):
        raise TypeError(f"model must be a workbench ClipBackend (from workbench.models.load_model), got "
                        f"{type(model).__name__}")
    if any(isinstance(m, _Wrapper) for m in model.modules()) or hasattr(model, "mode_approx_config"):
        raise AdapterError("mode-approximation adapters are already injected into this model; "
                           "call unload(model) first to inject new ones")
    refuse_second_adapter(model, "mode approximation")  # a peft tuner (LoRA, LoHa, ...) already there
    plan = _plan(model, cfg)
    for p in plan:
        _check_site(p)
    _check_rank(model, plan, cfg)
    flags = [(prm, prm.requires_grad) for prm in model.parameters()]
    try:
        adapted = _wrap_all(model, plan, cfg)
        extra = _freeze(model, cfg.train)
    except Exception:
        unload(model)  # leave the model as it was
        for prm, flag in flags:
            prm.requires_grad_(flag)
        raise
    object.__setattr__(model, "mode_approx_config", cfg)
    object.__setattr__(model, "_mode_approx_flags", flags)  # to restore on unload
    widths = {t: site_width(block_sites(tower_blocks(model, t)[0], model.matrix_kinds)[0]) for t in cfg.towers}
    adapted = {t: {m: adapted[t][m] for m in MATRICES if m in adapted[t]} for t in adapted}
    return InjectionReport(
        config=cfg, adapted=adapted, widths=widths,
        mode_vectors=sum(lam.shape[0] * lam.shape[1] for _, lam in _mode_vectors(model)),
        adapter_params=count_adapter_params(model), trainable_params=count_trainable(model),
        total_params=count_all(model), extra_trainable=extra)


def _mode_vectors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    for n, prm in model.named_parameters():
        if "mode_approx_lambda" in n:
            yield n, prm


def _freeze(model: nn.Module, train: tuple[str, ...]) -> tuple[str, ...]:
    """Freeze all but adapter parameters and those `train` names; returns the extra trainable names."""
    named = list(model.named_parameters())
    heads = tuple(f"model.{n}" for n in model.projection_names)  # the backend's names, inside model.model
    keep: set[str] = set()
    for entry in train:
        if entry in ("head", "proj"):
            hit = {n for n, _ in named if any(n == h or n.startswith(h + ".") for h in heads)}
        elif entry == "logit_scale":
            hit = {n for n, _ in named if n.endswith("logit_scale")}
        else:
            hit = {n for n, _ in named if entry in n and PREFIX not in n}
        if not hit:
            raise ValueError(f"train entry {entry!r} matches no parameter; accepted: 'head' (projection "
                             f"heads), 'logit_scale', or a substring of a parameter name "
                             f"(e.g. {', '.join(n for n, _ in named[:3])})")
        keep |= hit
    for n, prm in named:
        prm.requires_grad_(PREFIX in n or n in keep)
    return tuple(sorted(keep))


# -- merging and removing ----------------------------------------------------------------------
def _wrappers(model: nn.Module) -> list[_Wrapper]:
    found = [m for m in model.modules() if isinstance(m, _Wrapper)]
    if not found:
        raise ValueError("the model holds no mode-approximation adapters; call inject_mode_approx first")
    return found


def is_merged(model: nn.Module) -> bool:
    """True when the adapters' updates are folded into the base weights."""
    return all(w.merged for w in _wrappers(model))


def merge(model: nn.Module) -> None:
    """Fold every update (and gate) into its base weight; forward then runs the plain modules."""
    wrappers = _wrappers(model)
    if any(w.merged for w in wrappers):
        raise RuntimeError("the adapters are already merged; unmerge(model) before merging again")
    for w in wrappers:
        w.merge()


def unmerge(model: nn.Module) -> None:
    """Subtract the merged updates again (restores the base weights up to float round-off)."""
    wrappers = _wrappers(model)
    if not all(w.merged for w in wrappers):
        raise RuntimeError("the adapters are not merged; there is nothing to unmerge")
    for w in wrappers:
        w.unmerge()


def unload(model: nn.Module, merge: bool = False) -> nn.Module:
    """Remove the adapters, putting the base modules back; `merge=True` keeps their effect."""
    for name, w in [(n, m) for n, m in model.named_modules() if isinstance(m, _Wrapper)]:
        if merge and not w.merged:
            w.merge()
        elif not merge and w.merged:
            w.unmerge()
        _set_submodule(model, name, w.base_layer)
    for m in list(model.modules()):
        for attr in ("mode_approx_shared", "mode_approx_factors"):
            if attr in m._modules:
                delattr(m, attr)
        for attr in ("mode_approx_config", "_mode_approx_flags"):
            if attr in m.__dict__:
                if attr == "_mode_approx_flags":
                    for prm, flag in m.__dict__[attr]:
                        prm.requires_grad_(flag)
                del m.__dict__[attr]
    return model


# -- saving and counting -----------------------------------------------------------------------
def adapter_state_dict(model: nn.Module, trained: bool = True) -> dict[str, torch.Tensor]:
    """Adapter parameters (names containing "mode_approx_"), plus the other trainable ones if asked."""
    return {n: p.detach().clone() for n, p in model.named_parameters()
            if PREFIX in n or (trained and p.requires_grad)}


def load_adapter_state_dict(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Load what `adapter_state_dict` saved into a model with the same adapters injected."""
    params = dict(model.named_parameters())
    unexpected = [k for k in state if k not in params]
    missing = [n for n in params if PREFIX in n and n not in state]
    if strict and (unexpected or missing):
        raise ValueError(f"adapter state does not fit: {len(missing)} missing (e.g. {missing[:3]}), "
                         f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    with torch.no_grad():
        for k, v in state.items():
            if k in params:
                params[k].copy_(v)


def count_adapter_params(model: nn.Module) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if PREFIX in n)


class ParamCount(NamedTuple):
    trainable: int
    total: int


def print_trainable_parameters(model: nn.Module) -> ParamCount:
    """Print "trainable params: 1,234 || all params: 5,678 || trainable%: 21.7329" like peft."""
    trainable = count_trainable(model)
    total = count_all(model)
    print(f"trainable params: {trainable:,d} || all params: {total:,d} || "
          f"trainable%: {100 * trainable / total:.4f}")
    return ParamCount(trainable, total)


# -- informative context enhancement -----------------------------------------------------------
class ContextContrastiveObjective(nn.Module):
    """CLIP's contrastive loss with Aurora's informative context enhancement, as a dual encoder allows.

    Aurora adds 0.1 x the batch-mean text [CLS] to the *fused* [CLS] of positive image-text
    pairs before its matching head. A dual encoder has no fused token; the nearest place is the
    image feature of each pair (every pair of a CLIP batch is positive): during training,
    image_feature += weight * mean over the batch of the (projected, unnormalised) text features,
    before normalisation. The gradient flows into the text tower too, as in the authors' code.
    It is a training-time term only: encode_image / evaluation are untouched. weight=0 gives the
    plain CLIP loss (what `workbench.methods.contrastive.ContrastiveObjective` computes).
    """

    def __init__(self, model: nn.Module, weight: float = CONTEXT_WEIGHT):
        super().__init__()
        self.model = model
        self.weight = float(weight)
        self.loss = ClipLoss()

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> Loss:
        img = self.model.encode_image(images)  # (B, D)
        txt = self.model.encode_text(tokens)  # (B, D)
        if self.training and self.weight:
            img = img + self.weight * txt.mean(dim=0, keepdim=True)
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
        scale = self.model.logit_scale.exp()
        loss = self.loss(img, txt, scale)
        with torch.no_grad():
            hits = (img @ txt.T).argmax(1) == torch.arange(len(img), device=img.device)
        return Loss(loss, {"batch_i2t_acc": hits.float().mean(), "logit_scale": scale.detach()})


def objective_for(model: nn.Module, cfg: ModeApproxConfig) -> ContextContrastiveObjective:
    """The contrastive objective a config asks for (context enhancement on when cfg.context)."""
    return ContextContrastiveObjective(model, weight=CONTEXT_WEIGHT if cfg.context else 0.0)
