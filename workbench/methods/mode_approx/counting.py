"""Parameter arithmetic: the paper's formula, counted on real-size architectures.

Formula (Aurora): R^3 (the core; Tucker form only) + 2 d R (U and V) + R x (number of mode
vectors) [+ the gate's scale/shift vectors]. With shared factors the core is counted once and
U/V once per distinct hidden width; without sharing, once per adapted transformer block.
At d = 768, R = 32 on BLIP-base the paper reports about 0.09M (+0.04M scale/shift), 0.04%.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from workbench.checks import check_device

from .config import PAPER_TARGETS, ModeApproxConfig
from .model import block_sites, count_adapter_params, inject_mode_approx, site_width, tower_blocks, unload


@dataclass(frozen=True)
class TowerDims:
    width: int  # hidden width d
    layers: int  # transformer blocks
    mlp_width: int  # hidden width of the MLP (4d for CLIP)


def tower_dims(model: nn.Module, tower: str) -> TowerDims:
    """Width, depth and MLP width of a tower, read from its first block (adapters or not)."""
    blocks = tower_blocks(model, tower)
    sites = block_sites(blocks[0], model.matrix_kinds)
    fc1 = [s for s in sites if s.matrices == ("fc1",)]
    return TowerDims(width=site_width(sites[0]), layers=len(blocks),
                     mlp_width=fc1[0].module.out_features if fc1 else 0)


@dataclass(frozen=True)
class FormulaCount:
    """The formula's terms; `total` is what a model with these adapters should hold."""

    core: int  # R^3 per factor set (0 for CP)
    factors: int  # 2 d R per width per factor set
    modes: int  # R x number of mode vectors
    gates: int  # 2 d per gated text block
    mode_vectors: int

    @property
    def total(self) -> int:
        return self.core + self.factors + self.modes + self.gates


def _modes_per_block(cfg: ModeApproxConfig, tower: str, dims: TowerDims) -> int:
    ratio = dims.mlp_width // dims.width if dims.width else 0
    return sum(ratio if m in ("fc1", "fc2") else 1 for m in cfg.matrices(tower))


def formula_from_dims(cfg: ModeApproxConfig, dims: dict[str, TowerDims]) -> FormulaCount:
    """The formula for towers of the given sizes (no model needed)."""
    R = cfg.rank
    core_size = R ** 3 if cfg.form == "tucker" else 0
    per_block = {t: _modes_per_block(cfg, t, dims[t]) for t in cfg.towers}
    n_modes = sum(per_block[t] * dims[t].layers for t in cfg.towers)
    adapted = [t for t in cfg.towers if per_block[t]]
    if cfg.share:
        core = core_size if adapted else 0
        factors = sum(2 * d * R for d in {dims[t].width for t in adapted})
    else:
        core = core_size * sum(dims[t].layers for t in adapted)
        factors = sum(2 * dims[t].width * R * dims[t].layers for t in adapted)
    gates = 2 * dims["text"].width * dims["text"].layers if cfg.gated else 0
    return FormulaCount(core, factors, R * n_modes, gates, n_modes)


def formula_breakdown(cfg: ModeApproxConfig, model: nn.Module) -> FormulaCount:
    return formula_from_dims(cfg, {t: tower_dims(model, t) for t in cfg.towers})


def formula_param_count(cfg: ModeApproxConfig, model: nn.Module) -> int:
    """R^3 + 2dR + R * n_mode_entries [+ scale/shift] for `cfg` on `model`'s architecture."""
    return formula_breakdown(cfg, model).total


# -- real-scale table --------------------------------------------------------------------------
BLIP_BASE_TOTAL = 223_000_000  # BLIP-base retrieval model (ViT-B/16 + BERT-base with cross-attention)
PAPER_AT_32 = "about 0.09M (+0.04M scale/shift), 0.04% of BLIP-base"
STAND_IN = ("HF CLIP stand-in for BLIP-base: ViT-B/16 vision tower (768, 12 layers, MLP 3072, 224 px) and "
            "a BERT-base-sized text tower (768, 12 layers, MLP 3072, vocab 30524, 512 positions); it has no "
            "cross-attention layers, so the text tower lacks BLIP's 12 cross-attention blocks")


def blip_base_stand_in(device: str = "cpu") -> nn.Module:
    """A random-init HF CLIP with BLIP-base's tower sizes (see STAND_IN for what differs).

    device="meta" builds the shapes only (instant, no memory): enough for counting.
    """
    from transformers import CLIPConfig, CLIPModel

    from workbench.models import HFClipModel

    device = check_device(device)
    tower = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    text = dict(tower, vocab_size=30524, max_position_embeddings=512, bos_token_id=101, eos_token_id=102)
    cfg = CLIPConfig(text_config=text, vision_config=dict(tower, image_size=224, patch_size=16),
                     projection_dim=256)
    with torch.device(device):
        return HFClipModel(CLIPModel(cfg), name="blip-base-sized-stand-in")


def open_clip_architecture(name: str = "ViT-B-32", device: str = "cpu") -> nn.Module:
    """An open_clip architecture with random weights; device="meta" builds the shapes only."""
    import open_clip

    from workbench.models import OpenClipModel

    device = check_device(device)
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown open_clip architecture {name!r}; see open_clip.list_models()")
    with torch.device(device):
        model = open_clip.model.CLIP(**cfg)
    return OpenClipModel(model, name, open_clip.get_tokenizer(name), open_clip.OPENAI_DATASET_MEAN,
                         open_clip.OPENAI_DATASET_STD)


@dataclass(frozen=True)
class ScaleRow:
    model: str
    setting: str  # which targets / gating
    rank: int
    form: str
    formula: int  # all adapter parameters by the formula, gates included
    gates: int  # the gates' scale/shift share of `formula`
    counted: int | None  # adapter parameters found on the built model (None: formula only)
    base_params: int  # parameters of the model without adapters
    paper: str = ""

    @property
    def share_pct(self) -> float:
        """Adapters without the gates, as a percentage of the model (the paper's 0.04%)."""
        return 100 * (self.formula - self.gates) / self.base_params

    @property
    def total_pct(self) -> float:
        return 100 * self.formula / self.base_params


def _paper_blip_row(rank: int, form: str) -> ScaleRow:
    """The paper's own setting on the real BLIP-base (text q, k, v in self- AND cross-attention)."""
    dims = {"vision": TowerDims(768, 12, 3072), "text": TowerDims(768, 12, 3072)}
    cfg = ModeApproxConfig(rank=rank, form=form, targets=PAPER_TARGETS, gated=True)
    f = formula_from_dims(cfg, dims)
    cross = rank * 3 * 12  # q, k, v of the 12 cross-attention layers
    cross_gates = 2 * 768 * 12  # scale/shift on the cross-attention outputs
    return ScaleRow("BLIP-base (paper, formula only)", "paper targets + gates (incl. cross-attn)", rank, form,
                    f.total + cross + cross_gates, f.gates + cross_gates, None, BLIP_BASE_TOTAL,
                    PAPER_AT_32 if rank == 32 else "")


def _count_rows(name: str, model: nn.Module, settings: dict[str, dict], ranks: Sequence[int],
                form: str) -> list[ScaleRow]:
    base = sum(p.numel() for p in model.parameters())
    rows = []
    for setting, kwargs in settings.items():
        for rank in ranks:
            cfg = ModeApproxConfig(rank=rank, form=form, **kwargs)
            inject_mode_approx(model, cfg)
            counted = count_adapter_params(model)
            unload(model)
            f = formula_breakdown(cfg, model)
            rows.append(ScaleRow(name, setting, rank, form, f.total, f.gates, counted, base,
                                 PAPER_AT_32 if rank == 32 else ""))
    return rows


SETTINGS = {"attn+mlp, both towers": {},
            "paper targets + gates": {"targets": PAPER_TARGETS, "gated": True}}


def real_scale_table(ranks: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), form: str = "tucker",
                     models: dict[str, nn.Module] | None = None) -> list[ScaleRow]:
    """Formula vs counted parameters on ViT-B-32 and a BLIP-base-sized stand-in, per rank.

    The two default architectures are built on the meta device (parameter shapes, no values:
    the counts are those of the real architectures); `models` (name -> ClipBackend) replaces
    them. The last rows give the paper's own BLIP-base count
    (formula only, with the cross-attention a dual encoder lacks).
    """
    if models is None:  # shapes only: counting needs no weights
        models = {"ViT-B-32 (open_clip)": open_clip_architecture("ViT-B-32", device="meta"),
                  "BLIP-base-sized stand-in (HF CLIP)": blip_base_stand_in(device="meta")}
    rows = []
    for name, model in models.items():
        rows += _count_rows(name, model, SETTINGS, ranks, form)
    rows += [_paper_blip_row(r, form) for r in ranks]
    return rows


def format_table(rows: Sequence[ScaleRow]) -> str:
    """A plain-text table of `real_scale_table` rows."""
    head = (f"{'model':34} {'setting':40} {'R':>3} {'formula':>9} {'(gates)':>8} {'counted':>9} "
            f"{'% no gate':>9} {'% total':>8}  paper at R=32")
    lines = [head, "-" * len(head)]
    for r in rows:
        counted = f"{r.counted:,}" if r.counted is not None else "-"
        lines.append(f"{r.model:34} {r.setting:40} {r.rank:>3} {r.formula:>9,} {r.gates:>8,} {counted:>9} "
                     f"{r.share_pct:>9.4f} {r.total_pct:>8.4f}  {r.paper}")
    return "\n".join(lines)
