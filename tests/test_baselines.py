"""Baselines: exact trainable counts, step-0 == frozen model, adapters that really act, bad input."""
import copy

import pytest
import torch

from workbench.methods.baselines import (
    LinearProbeObjective,
    apply_bitfit,
    apply_full_finetune,
    apply_linear_probe,
    apply_loha,
    apply_lokr,
    apply_lora,
    apply_vera,
    count_trainable,
    lora_param_count,
    lora_rank_for_budget,
)
from workbench.methods.mode_approx import ModeApproxConfig, adapted_modules, formula_param_count
from workbench.models import load_model
from workbench.world import zero_shot_templates

# method -> (apply call, substring every trainable parameter name must contain)
CASES = {
    "lora": (lambda m: apply_lora(m, r=2), "lora_"),
    "loha": (lambda m: apply_loha(m, r=2), "hada_"),
    "lokr": (lambda m: apply_lokr(m, r=2), "lokr_"),
    "vera": (lambda m: apply_vera(m, r=8), "vera_lambda"),
    "bitfit": (lambda m: apply_bitfit(m), "bias"),
}


@pytest.fixture(scope="module")
def hf_model(tiny_hf_config):
    torch.manual_seed(0)
    return load_model(tiny_hf_config)


@pytest.fixture(params=["open_clip", "hf_clip"])
def model(request, tiny_random, hf_model):
    return copy.deepcopy(tiny_random if request.param == "open_clip" else hf_model).eval()


def _inputs(model):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, model.image_size, model.image_size, generator=g)
    return images, model.tokenize(["a red circle.", "a pentagon on grass."])


def _feats(model, images, tokens):
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


@pytest.mark.parametrize("method", list(CASES))
def test_step0_equals_frozen_and_only_adapter_trains(model, method):
    apply, marker = CASES[method]
    images, tokens = _inputs(model)
    ref = _feats(model, images, tokens)
    report = apply(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(marker in n for n in names), names[:5]
    assert report.trainable == count_trainable(model) == sum(p.numel() for p in model.parameters()
                                                             if p.requires_grad)
    assert report.total == sum(p.numel() for p in model.parameters())
    out = _feats(model, images, tokens)
    if method != "bitfit":  # adapters start as the identity update
        for a, b in zip(ref, out):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # fused MHA kernels differ in the last bits
    # a backward reaches the trainable parameters and nothing else
    img, txt, scale = model(images, tokens)
    (img @ txt.T * scale).logsumexp(-1).sum().backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n


@pytest.mark.parametrize("method", list(CASES))
def test_adapter_is_not_bypassed(model, method):
    """Perturbing the trainable parameters changes both towers' features (catches a silent no-op)."""
    apply, _ = CASES[method]
    images, tokens = _inputs(model)
    apply(model)
    ref = _feats(model, images, tokens)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5 * torch.randn(p.shape, generator=g))
    out = _feats(model, images, tokens)
    for a, b in zip(ref, out):
        assert (a - b).abs().max() > 1e-4


def test_towers_restrict_the_adapter(tiny_random):
    model = copy.deepcopy(tiny_random)
    images, tokens = _inputs(model)
    report = apply_lora(model, r=1, towers=("vision",))
    assert all(t.startswith("visual.") for t in report.targets)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_()
    ref_txt = _feats(tiny_random, images, tokens)[1]
    torch.testing.assert_close(_feats(model, images, tokens)[1], ref_txt, atol=1e-5, rtol=1e-5)


def test_text_tower_alone_is_not_matched_by_suffix(tiny_random):
    """open_clip's text blocks (transformer.resblocks.i) are a suffix of the vision tower's names: LoRA targets exact
    names, so towers=("text",) leaves the vision tower alone and the count formula holds."""
    model = copy.deepcopy(tiny_random)
    report = apply_lora(model, r=1, towers=("text",))
    trained = {n for n, p in model.model.named_parameters() if p.requires_grad}
    assert trained and not any(n.startswith("visual.") for n in trained)
    assert report.trainable == lora_param_count(tiny_random, 1, towers=("text",))


def _lora_modules(model) -> dict[str, set[str]]:
    """Module (inside model.model) -> which of its LoRA parts train: "in" (the module's own A, B), "out_proj"."""
    out: dict[str, set[str]] = {}
    for n, p in model.model.named_parameters():
        if "lora_" in n and p.requires_grad:
            module = n.split(".lora_")[0]
            site = module.removesuffix(".base_layer.out_proj")  # peft's LoRA inside a MultiheadAttention
            out.setdefault(site, set()).add("in" if site == module else "out_proj")
    return out


@pytest.mark.parametrize("placement", ["all", "paper"])
def test_lora_on_given_sites_targets_exactly_them(model, placement):
    """LoRA with `sites` (here mode approximation's, per placement) adapts exactly those modules; a q, k, v-only
    attention site keeps its out_proj LoRA frozen at zero, so perturbing every trainable parameter leaves the
    attention output projection (and every module outside the sites) as it was."""
    sites = adapted_modules(model, ModeApproxConfig.placed(placement, rank=2))
    predicted = lora_param_count(model, 2, sites=sites)
    fused = {n for n in sites if isinstance(model.model.get_submodule(n), torch.nn.MultiheadAttention)}
    report = apply_lora(model, r=2, sites=sites)
    assert list(report.targets) == list(sites) and report.details["sites"] == sites
    assert report.trainable == predicted == count_trainable(model)
    lora = _lora_modules(model)
    assert set(lora) == set(sites)
    for name, matrices in sites.items():
        assert lora[name] == ({"in", "out_proj"} if name in fused and "out" in matrices else {"in"}), name
    qkv_only = [n for n, m in sites.items() if m == ("q", "k", "v")]
    assert bool(qkv_only) == (placement == "paper" and bool(fused))  # HF CLIP: separate q/k/v Linear sites
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    for n in qkv_only:
        attn = model.model.get_submodule(n)
        assert attn.get_base_layer().out_proj.get_delta_weight("default").abs().max() == 0
        assert attn.get_delta_weight("default").abs().max() > 0  # q, k, v do change


def test_lora_sites_rank_matches_a_budget(tiny_random):
    """The rank nearest a mode-approx budget, counted on the same sites."""
    for placement in ("all", "paper"):
        cfg = ModeApproxConfig.placed(placement, rank=32)
        sites = adapted_modules(tiny_random, cfg)
        budget = formula_param_count(cfg, tiny_random)
        m = lora_rank_for_budget(tiny_random, budget, sites=sites)
        per = lora_param_count(tiny_random, 1, sites=sites)
        assert m.params == m.rank * per and all(abs(m.params - budget) <= abs(k * per - budget)
                                                for k in (m.rank - 1, m.rank + 1) if k >= 1)


def test_bad_sites_are_named(tiny_random):
    model = copy.deepcopy(tiny_random)
    attn = "transformer.resblocks.0.attn"
    with pytest.raises(ValueError, match="accepted .*'q', 'k', 'v'"):
        apply_lora(model, r=1, sites={attn: ("q", "v")})
    with pytest.raises(ValueError, match="is no module"):
        apply_lora(model, r=1, sites={"transformer.resblocks.9.attn": ("q", "k", "v")})
    with pytest.raises(ValueError, match="not both"):
        apply_lora(model, r=1, targets=("attn",), sites={attn: ("q", "k", "v")})
    with pytest.raises(ValueError, match="MultiheadAttention"):
        apply_lora(model, r=1, sites={f"{attn}.out_proj": ("out",)})
    with pytest.raises(ValueError, match="non-empty mapping"):
        apply_lora(model, r=1, sites={})


@pytest.mark.parametrize("r", [1, 3, 7])
def test_lora_count_formula_is_exact(model, r):
    predicted = lora_param_count(model, r)
    assert apply_lora(model, r=r).trainable == predicted


@pytest.mark.parametrize("budget", [1, 500, 5376, 9000, 40_000, 123_457])
def test_lora_rank_for_budget_is_nearest(tiny_random, budget):
    m = lora_rank_for_budget(tiny_random, budget)
    per = lora_param_count(tiny_random, 1)
    assert m.params == m.rank * per and m.rank >= 1 and m.budget == budget
    for other in (m.rank - 1, m.rank + 1):
        if other >= 1:
            assert abs(m.params - budget) <= abs(other * per - budget)


def test_full_finetune_and_bitfit_counts(tiny_random):
    model = copy.deepcopy(tiny_random)
    total = sum(p.numel() for p in model.parameters())
    assert apply_full_finetune(model).trainable == total
    rep = apply_full_finetune(model, exclude=("logit_scale",))
    assert rep.trainable == total - 1 and not model.model.logit_scale.requires_grad
    bias = sum(p.numel() for n, p in model.model.named_parameters() if n.endswith("bias"))
    assert apply_bitfit(model).trainable == bias
    assert "trainable params: " in str(rep) and "trainable%: " in str(rep)


def test_linear_probe_starts_at_zero_shot_and_trains_only_the_head(model):
    names = ["circle", "pentagon", "star"]
    images, _ = _inputs(model)
    report = apply_linear_probe(model, names, zero_shot_templates())
    probe = report.module
    assert report.trainable == len(names) * model.embed_dim == count_trainable(probe)
    zs = model.zero_shot_head(names, zero_shot_templates())
    with torch.no_grad():
        torch.testing.assert_close(probe(images), zs(model.encode_image(images)), atol=1e-5, rtol=1e-5)
    out = LinearProbeObjective(probe.train())(images=images, labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert probe.head.weight.grad is not None
    assert all(p.grad is None for p in model.parameters())
    assert not model.training  # the frozen tower stays in eval mode while the probe trains


def test_bad_input_is_named(tiny_random):
    model = copy.deepcopy(tiny_random)
    with pytest.raises(ValueError, match="r=0"):
        apply_lora(model, r=0)
    with pytest.raises(ValueError, match="match no module"):
        apply_lora(model, r=1, targets=("q_proj",))
    with pytest.raises(ValueError, match="MultiheadAttention"):
        apply_loha(model, r=2, targets=("out_proj",))
    with pytest.raises(ValueError, match="towers"):
        apply_lora(model, r=1, towers=("audio",))
    with pytest.raises(ValueError, match="n_params=0"):
        lora_rank_for_budget(model, 0)
    with pytest.raises(ValueError, match="init='random'"):
        apply_linear_probe(model, ["circle"], zero_shot_templates(), init="random")
