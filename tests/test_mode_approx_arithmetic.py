"""Parameter arithmetic of mode approximation: the formula by hand, and counted on real-size towers.

Real-size architectures are built on the meta device (shapes only), so counting ViT-B-32 and the
BLIP-base-sized stand-in costs no memory and no initialisation time.
"""
import pytest

from workbench.methods.mode_approx import (
    PAPER_TARGETS,
    ModeApproxConfig,
    TowerDims,
    blip_base_stand_in,
    count_adapter_params,
    format_table,
    formula_breakdown,
    formula_from_dims,
    formula_param_count,
    inject_mode_approx,
    open_clip_architecture,
    real_scale_table,
    tower_dims,
    unload,
)

BLIP_DIMS = {"vision": TowerDims(768, 12, 3072), "text": TowerDims(768, 12, 3072)}


@pytest.fixture(scope="module")
def vitb32():
    return open_clip_architecture("ViT-B-32", device="meta")


@pytest.fixture(scope="module")
def stand_in():
    return blip_base_stand_in(device="meta")


def test_formula_by_hand_at_blip_size():
    """d = 768, R = 32: R^3 + 2dR + R x mode vectors, + 2d per gated text block."""
    f = formula_from_dims(ModeApproxConfig(rank=32, targets=PAPER_TARGETS, gated=True), BLIP_DIMS)
    # vision: 12 blocks x (q, k, v, out + 4 + 4 MLP blocks); text: 12 x (q, k, v)
    assert f.mode_vectors == 12 * 12 + 12 * 3
    assert (f.core, f.factors, f.modes, f.gates) == (32 ** 3, 2 * 768 * 32, 32 * 180, 2 * 768 * 12)
    assert f.total == 87_680 + 18_432
    # the paper's ~0.09M counts the cross-attention q, k, v too (36 more mode vectors): 88,832
    assert f.total - f.gates + 32 * 36 == 88_832


@pytest.mark.parametrize("rank", [1, 7, 32])
def test_tucker_minus_cp_is_the_core(rank):
    for share, n_sets in ((True, 1), (False, 24)):
        tucker = formula_from_dims(ModeApproxConfig(rank=rank, share=share), BLIP_DIMS).total
        cp = formula_from_dims(ModeApproxConfig(rank=rank, form="cp", share=share), BLIP_DIMS).total
        assert tucker - cp == n_sets * rank ** 3


def test_tower_dims_of_real_architectures(vitb32, stand_in):
    assert tower_dims(vitb32, "vision") == TowerDims(768, 12, 3072)
    assert tower_dims(vitb32, "text") == TowerDims(512, 12, 2048)
    assert tower_dims(stand_in, "vision") == tower_dims(stand_in, "text") == TowerDims(768, 12, 3072)


@pytest.mark.parametrize("form", ["tucker", "cp"])
@pytest.mark.parametrize("share", [True, False])
def test_counted_on_real_architectures_equals_formula(vitb32, stand_in, form, share):
    for model in (vitb32, stand_in):
        for cfg in (ModeApproxConfig(rank=32, form=form, share=share),
                    ModeApproxConfig(rank=8, form=form, share=share, targets=PAPER_TARGETS, gated=True)):
            inject_mode_approx(model, cfg)
            try:
                assert count_adapter_params(model) == formula_param_count(cfg, model)
            finally:
                unload(model)


def test_real_scale_table(vitb32, stand_in):
    rows = real_scale_table(ranks=(1, 32), models={"vit": vitb32, "blip": stand_in})
    counted = [r for r in rows if r.counted is not None]
    assert len(counted) == 2 * 2 * 2 and all(r.counted == r.formula for r in counted)
    by = {(r.model, r.setting, r.rank): r for r in rows}
    vit32 = by[("vit", "attn+mlp, both towers", 32)]
    assert vit32.formula == 32 ** 3 + 2 * 32 * (768 + 512) + 32 * 24 * 12 == 123_904
    assert vit32.base_params == 151_277_313 and vit32.share_pct == pytest.approx(0.0819, abs=1e-4)
    paper = by[("BLIP-base (paper, formula only)", "paper targets + gates (incl. cross-attn)", 32)]
    assert paper.formula - paper.gates == 88_832 and paper.gates == 36_864  # ~0.09M + ~0.04M
    assert round(paper.share_pct, 2) == 0.04 and "0.04%" in paper.paper
    assert "123,904" in format_table(rows)


def test_formula_grows_with_rank(vitb32):
    rows = real_scale_table(ranks=(1, 2, 4, 8), models={"vit": vitb32})
    for setting in ("attn+mlp, both towers", "paper targets + gates"):
        f = [r.formula for r in rows if r.setting == setting and r.counted is not None]
        assert f == sorted(f) and len(set(f)) == 4


def test_formula_breakdown_on_meta_matches_cpu_model():
    """Counting on meta shapes is counting the real thing: same numbers as a CPU tiny model."""
    import open_clip
    import torch

    from workbench.models import TINY_MODEL_CFG, build_tiny

    cfg = ModeApproxConfig(rank=4, gated=True)
    cpu = build_tiny()
    with torch.device("meta"):
        meta_clip = open_clip.model.CLIP(**TINY_MODEL_CFG)
    meta = type(cpu)(meta_clip, "tiny-meta", None, (0.5,) * 3, (0.25,) * 3)
    assert formula_breakdown(cfg, meta) == formula_breakdown(cfg, cpu)
    for model in (cpu, meta):
        inject_mode_approx(model, cfg)
    assert count_adapter_params(meta) == count_adapter_params(cpu) == formula_param_count(cfg, cpu)
