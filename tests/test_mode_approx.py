"""Mode-approximation adapters: invariants over tiny-world-clip, ViT-B-32 (random init) and a small HF CLIP.

Reference features are computed with autograd on (the frozen copy's parameters require grad),
so nn.MultiheadAttention takes its regular path: its no-grad fast path differs from the regular
one by ~1e-6 by itself, which would blur a 1e-6 comparison.
"""
import copy
import json
import re
from contextlib import contextmanager

import pytest
import torch
import torch.nn as nn
from transformers import CLIPConfig

from workbench.methods.contrastive import ContrastiveObjective
from workbench.methods.mode_approx import (
    PAPER_TARGETS,
    PLACEMENTS,
    ContextContrastiveObjective,
    ModeApproxConfig,
    ModeApproxLinear,
    ModeApproxMultiheadAttention,
    ModeFactors,
    adapted_modules,
    adapter_state_dict,
    count_adapter_params,
    count_trainable,
    formula_param_count,
    inject_mode_approx,
    is_merged,
    load_adapter_state_dict,
    merge,
    objective_for,
    print_trainable_parameters,
    unload,
    unmerge,
)
from workbench.models import build_tiny, load_model

HF_CFG = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2)


def _hf_config() -> CLIPConfig:
    return CLIPConfig(text_config=dict(HF_CFG, max_position_embeddings=24, vocab_size=49408),
                      vision_config=dict(HF_CFG, image_size=32, patch_size=8), projection_dim=32)


def _build(name: str):
    torch.manual_seed(0)
    if name == "tiny":
        return build_tiny().eval()
    if name == "hf":
        return load_model(_hf_config()).eval()
    return load_model("ViT-B-32").eval()


@pytest.fixture(scope="module")
def models():
    """name -> (model, images, tokens, reference features); every test unloads what it injects."""
    out = {}
    for name in ("tiny", "hf", "vitb32"):
        model = _build(name)
        images = torch.rand(2, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(1))
        tokens = model.tokenize(["a red star on grass.", "a blue circle on sand."])
        out[name] = (model, images, tokens, _features(model, images, tokens))
    return out


def _features(model, images, tokens) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():  # see the module docstring
        return model.encode_image(images).detach(), model.encode_text(tokens).detach()


@contextmanager
def injected(model, cfg):
    report = inject_mode_approx(model, cfg)
    try:
        yield report
    finally:
        unload(model)


def _perturb(model, seed: int = 0, std: float = 0.05) -> None:
    """Random non-zero adapters (V included), so that the update is not zero."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "mode_approx_" in n:
                p.add_(torch.randn(p.shape, generator=g) * std)


def _max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


# table: (model, form, share); ViT-B-32 (150M parameters, towers of widths 768 and 512) kept to
# the default row: the other rows run the same code paths on tiny-world-clip (open_clip)
CASES = [(m, f, s) for m in ("tiny", "hf") for f in ("tucker", "cp") for s in (True, False)] + [
    ("vitb32", "tucker", True)]


@pytest.mark.parametrize("name,form,share", CASES)
def test_step0_equals_frozen_and_merge_equals_unmerged(models, name, form, share):
    model, images, tokens, ref = models[name]
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with injected(model, ModeApproxConfig(rank=4, form=form, share=share)):
            # step 0: V is zero, so the adapted model is the frozen one
            assert _max_diff(_features(model, images, tokens), ref) <= 1e-6
            _perturb(model)
            unmerged = _features(model, images, tokens)
            assert _max_diff(unmerged, ref) > 1e-3  # the perturbation is visible
            merge(model)
            assert is_merged(model)
            assert _max_diff(_features(model, images, tokens), unmerged) <= 1e-5
            unmerge(model)
            assert not is_merged(model)
        # unmerged and unloaded: the original weights, up to the merge/unmerge round-off
        after = model.state_dict()
        assert after.keys() == weights.keys()
        changed = [k for k in weights if not torch.equal(after[k], weights[k])]
        assert all((after[k] - weights[k]).abs().max() <= 1e-6 for k in changed)
        assert all(p.requires_grad for p in model.parameters())
    finally:
        model.load_state_dict(weights)  # exact weights for the next test


@pytest.mark.parametrize("name,form,share", [("tiny", "tucker", True), ("tiny", "cp", False),
                                             ("hf", "tucker", False), ("hf", "cp", True)])
def test_unload_with_merge_keeps_the_update(models, name, form, share):
    model, images, tokens, ref = models[name]
    fresh = copy.deepcopy(model)
    inject_mode_approx(fresh, ModeApproxConfig(rank=3, form=form, share=share, gated=True))
    _perturb(fresh, seed=3)
    adapted = _features(fresh, images, tokens)
    unload(fresh, merge=True)
    assert not any(isinstance(m, (ModeApproxLinear, ModeApproxMultiheadAttention, ModeFactors))
                   for m in fresh.modules())
    assert not any("mode_approx_" in n for n, _ in fresh.named_parameters())
    assert fresh.state_dict().keys() == model.state_dict().keys()
    assert _max_diff(_features(fresh, images, tokens), adapted) <= 1e-5


@pytest.mark.parametrize("name,train", [("tiny", ()), ("hf", ("head", "logit_scale")),
                                        ("vitb32", ("head",))])
def test_gradients_reach_only_adapters_and_chosen_heads(models, name, train):
    model, images, tokens, _ = models[name]
    cfg = ModeApproxConfig(rank=4, train=train, gated=True)
    with injected(model, cfg) as report:
        try:
            ContrastiveObjective(model).train()(images, tokens).loss.backward()  # dropout on
        finally:
            model.eval()
        extra = set(report.extra_trainable)
        assert ("head" in train) == any("proj" in n for n in extra)
        assert ("logit_scale" in train) == any(n.endswith("logit_scale") for n in extra)
        assert all("proj" in n or n.endswith("logit_scale") for n in extra)
        for n, p in model.named_parameters():
            chosen = "mode_approx_" in n or n in extra
            assert p.requires_grad == chosen, n
            assert (p.grad is not None) == chosen, n
            if ".V." in n:  # V starts at zero, so the first gradient reaches V (the rest once V moves)
                assert p.grad.abs().sum() > 0, n
            p.grad = None


def test_only_adapters_change_in_training(models):
    """Two optimizer steps through the engine: frozen weights stay bit-identical, V moves."""
    from workbench.engine import TrainConfig, train

    model, images, tokens, _ = models["tiny"]
    model = copy.deepcopy(model)
    cfg = ModeApproxConfig(rank=4, context=True)
    inject_mode_approx(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = {"images": images.repeat(2, 1, 1, 1), "tokens": model.tokenize(["a", "b", "c", "d"])}
    train(objective_for(model, cfg), lambda step: batch, TrainConfig(steps=2, lr=1e-2, log_every=1),
          progress=False)
    for n, p in model.named_parameters():
        if "mode_approx_" not in n:
            assert torch.equal(before[n], p.detach()), n
    assert all(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if ".V." in n)


@pytest.mark.parametrize("name", ["tiny", "hf", "vitb32"])
@pytest.mark.parametrize("form,share,gated", [("tucker", True, False), ("cp", True, True),
                                              ("tucker", False, True), ("cp", False, False)])
def test_counted_parameters_equal_formula(models, name, form, share, gated):
    model = models[name][0]
    cfg = ModeApproxConfig(rank=5, form=form, share=share, gated=gated)
    with injected(model, cfg) as report:
        formula = formula_param_count(cfg, model)
        assert count_adapter_params(model) == formula == report.adapter_params
        assert count_trainable(model) == formula == report.trainable_params  # train=(): adapters only
    assert formula_param_count(cfg, model) == formula  # same formula on the plain model


def test_shared_factors_per_distinct_width(models):
    """ViT-B-32: vision 768, text 512 -> one U/V pair per width, one core; 24 blocks x 12 mode vectors."""
    model = models["vitb32"][0]
    with injected(model, ModeApproxConfig(rank=32)) as report:
        shared = model.mode_approx_shared
        assert sorted(shared.widths) == [512, 768] and shared.core.shape == (32, 32, 32)
        assert report.widths == {"vision": 768, "text": 512}
        assert report.mode_vectors == 24 * 12
        assert report.adapter_params == 32 ** 3 + 2 * 32 * (768 + 512) + 32 * 24 * 12 == 123_904


def test_tiny_count_by_hand(models):
    """tiny-world-clip: d = 128, 4 + 3 blocks, MLP 512: per block 4 attention + 2 x 4 MLP mode vectors."""
    model = models["tiny"][0]
    for form, core in (("tucker", 4 ** 3), ("cp", 0)):
        with injected(model, ModeApproxConfig(rank=4, form=form)):
            assert count_trainable(model) == core + 2 * 128 * 4 + 4 * 7 * 12
    with injected(model, ModeApproxConfig(rank=4, share=False)):  # one factor set per block
        assert count_trainable(model) == 7 * (4 ** 3 + 2 * 128 * 4) + 4 * 7 * 12


def test_paper_targets_on_hf(models):
    """Paper targets: vision attn + mlp; text q, k, v; the gate wraps the text out_proj without modes."""
    model = models["hf"][0]
    cfg = ModeApproxConfig.paper(rank=4)
    assert cfg.targets == PAPER_TARGETS and cfg.train == ("head",)
    with injected(model, cfg) as report:
        assert set(report.adapted["text"]) == {"q", "k", "v"}
        assert set(report.adapted["vision"]) == {"q", "k", "v", "out", "fc1", "fc2"}
        out_proj = model.text_blocks[0].self_attn.out_proj
        assert isinstance(out_proj, ModeApproxLinear) and out_proj.mode_approx_lambda is None
        assert out_proj.mode_approx_gate is not None
        assert not isinstance(model.text_blocks[0].mlp.fc1, ModeApproxLinear)
        # HF MLP is 4x here: fc1 gets 4 x 1 mode vectors, fc2 1 x 4
        assert model.vision_blocks[0].mlp.fc1.mode_approx_lambda.shape == (4, 1, 4)
        assert model.vision_blocks[0].mlp.fc2.mode_approx_lambda.shape == (1, 4, 4)


def test_placements_name_their_targets():
    assert ModeApproxConfig().targets == PLACEMENTS["all"] == ("attn", "mlp")
    assert ModeApproxConfig().placement == "all" and ModeApproxConfig(targets=("q",)).placement is None
    paper = ModeApproxConfig.placed("paper", rank=8, gated=True)
    assert paper == ModeApproxConfig(rank=8, targets=PAPER_TARGETS, gated=True) and paper.placement == "paper"
    assert ModeApproxConfig.paper().placement == "paper"
    with pytest.raises(ValueError, match="placement='nope'; accepted: 'all', 'paper'"):
        ModeApproxConfig.placed("nope")
    with pytest.raises(ValueError, match="names the targets twice"):
        ModeApproxConfig.placed("paper", targets=("attn",))


# backend -> (each tower's block prefix, number of vision and text blocks)
SITES = {
    "tiny": ({"vision": "visual.transformer.resblocks", "text": "transformer.resblocks"}, (4, 3)),
    "hf": ({"vision": "vision_model.encoder.layers", "text": "text_model.encoder.layers"}, (2, 2)),
}


def _expected_sites(name: str, placement: str) -> dict[str, tuple[str, ...]]:
    """Where each placement puts updates, written out by hand for open_clip (fused attention) and HF CLIP."""
    prefixes, (n_vision, n_text) = SITES[name]
    out = {}
    for tower, n in (("vision", n_vision), ("text", n_text)):
        for i in range(n):
            b = f"{prefixes[tower]}.{i}"
            text_paper = tower == "text" and placement == "paper"
            if name == "tiny":
                out[f"{b}.attn"] = ("q", "k", "v") if text_paper else ("q", "k", "v", "out")
                if not text_paper:
                    out.update({f"{b}.mlp.c_fc": ("fc1",), f"{b}.mlp.c_proj": ("fc2",)})
            else:
                for m in ("q", "k", "v") + (() if text_paper else ("out",)):
                    out[f"{b}.self_attn.{m}_proj"] = (m,)
                if not text_paper:
                    out.update({f"{b}.mlp.fc1": ("fc1",), f"{b}.mlp.fc2": ("fc2",)})
    return out


@pytest.mark.parametrize("placement", ["all", "paper"])
@pytest.mark.parametrize("name", ["tiny", "hf"])
def test_placement_decides_which_modules_get_updates(models, name, placement):
    """"all": every attention and MLP matrix of both towers; "paper": the text tower's q, k, v only (its attention
    output and MLP untouched), the vision tower as "all". adapted_modules says so, and injection does it."""
    model = models[name][0]
    cfg = ModeApproxConfig.placed(placement, rank=2)
    sites = adapted_modules(model, cfg)
    assert sites == _expected_sites(name, placement)
    with injected(model, cfg) as report:
        assert set(report.adapted["vision"]) == {"q", "k", "v", "out", "fc1", "fc2"}
        assert set(report.adapted["text"]) == ({"q", "k", "v"} if placement == "paper" else
                                               {"q", "k", "v", "out", "fc1", "fc2"})
        wrapped = {n.removeprefix("model.") for n, m in model.named_modules()
                   if isinstance(m, (ModeApproxLinear, ModeApproxMultiheadAttention))}
        assert wrapped == set(sites)  # no other module is wrapped (gated=False)
        per_module: dict[str, set] = {}
        for kinds in report.adapted.values():
            for kind, names in kinds.items():
                for n in names:
                    per_module.setdefault(n.removeprefix("model."), set()).add(kind)
        assert per_module == {n: set(ms) for n, ms in sites.items()}


def test_print_trainable_parameters_format(models, capsys):
    model = models["tiny"][0]
    with injected(model, ModeApproxConfig(rank=4)):
        counts = print_trainable_parameters(model)
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+) \|\| trainable%: (\d+\.\d{4})", line)
    assert m, line
    trainable, total = (int(g.replace(",", "")) for g in m.groups()[:2])
    assert (trainable, total) == tuple(counts) and trainable == 64 + 1024 + 336
    assert float(m.group(3)) == pytest.approx(100 * trainable / total, abs=1e-4)


def test_adapter_state_dict_round_trip(models):
    model, images, tokens, _ = models["hf"]
    cfg = ModeApproxConfig(rank=4, gated=True, train=("logit_scale",))
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    inject_mode_approx(a, cfg)
    inject_mode_approx(b, cfg)
    _perturb(a, seed=5)
    state = adapter_state_dict(a)
    assert state and all("mode_approx_" in k or k.endswith("logit_scale") for k in state)
    assert any(k.endswith("logit_scale") for k in state)
    assert _max_diff(_features(a, images, tokens), _features(b, images, tokens)) > 1e-3
    load_adapter_state_dict(b, state)
    assert _max_diff(_features(a, images, tokens), _features(b, images, tokens)) == 0
    dropped = next(k for k in state if "mode_approx_" in k)
    with pytest.raises(ValueError, match="1 missing"):
        load_adapter_state_dict(b, {k: v for k, v in state.items() if k != dropped})


def test_same_seed_same_adapters(models):
    model = models["tiny"][0]
    states = []
    for seed in (0, 0, 1):
        with injected(model, ModeApproxConfig(rank=4, seed=seed)):
            states.append(adapter_state_dict(model))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_context_objective(models):
    """Context enhancement changes the training loss only; weight 0 is the plain CLIP loss."""
    model, images, tokens, _ = models["tiny"]
    model = copy.deepcopy(model)
    inject_mode_approx(model, ModeApproxConfig(rank=4, context=True))
    plain = ContrastiveObjective(model).eval()
    ctx = objective_for(model, model.mode_approx_config).train()
    model.eval()  # dropout off; the objective's own flag decides the context term
    assert ctx.weight == pytest.approx(0.1)
    with torch.no_grad():
        base = plain(images, tokens).loss
        assert not torch.allclose(ctx(images, tokens).loss, base)
        assert torch.allclose(ContextContrastiveObjective(model, weight=0.0).train()(images, tokens).loss, base)
        assert torch.allclose(ctx.eval()(images, tokens).loss, base)


# -- nn.MultiheadAttention wrapper against the module itself ------------------------------------
MHA_CASES = [
    dict(batch_first=True, mask="float", kpm=False, need_weights=False, cross=False),
    dict(batch_first=True, mask="bool", kpm=True, need_weights=True, cross=False),
    dict(batch_first=False, mask=None, kpm=True, need_weights=False, cross=True),
    dict(batch_first=False, mask="float3d", kpm=False, need_weights=True, cross=False),
]


@pytest.mark.parametrize("case", MHA_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_mha_wrapper_matches_multihead_attention(case):
    torch.manual_seed(0)
    d, H, B, L = 16, 4, 2, 5
    mha = nn.MultiheadAttention(d, H, batch_first=case["batch_first"]).eval()
    x = torch.randn(B, L, d)
    kv = torch.randn(B, L, d) if case["cross"] else x
    if not case["batch_first"]:
        x, kv = x.transpose(0, 1), kv.transpose(0, 1)
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    mask = {None: None, "bool": causal, "float": torch.zeros(L, L).masked_fill(causal, float("-inf")),
            "float3d": torch.randn(B * H, L, L)}[case["mask"]]
    kpm = torch.tensor([[False] * L, [False] * (L - 2) + [True] * 2]) if case["kpm"] else None
    kwargs = dict(key_padding_mask=kpm, need_weights=case["need_weights"], attn_mask=mask)
    with torch.enable_grad():
        want = mha(x, kv, kv, **kwargs)
    factors = ModeFactors([d], 3, "tucker", torch.Generator().manual_seed(0))
    wrapped = ModeApproxMultiheadAttention(mha, factors, d, ("q", "k", "v", "out"), ModeApproxConfig(rank=3),
                                           torch.Generator().manual_seed(0)).eval()
    got = wrapped(x, kv, kv, **kwargs)
    assert torch.allclose(got[0], want[0], atol=1e-6)
    assert (got[1] is None) == (want[1] is None)
    if want[1] is not None:
        assert torch.allclose(got[1], want[1], atol=1e-6)
    with torch.no_grad():  # a non-zero update merges exactly, cross-attention included
        factors.V[f"d{d}"].weight.normal_()
    unmerged = wrapped(x, kv, kv, **kwargs)[0]
    wrapped.merge()
    assert torch.allclose(wrapped(x, kv, kv, **kwargs)[0], unmerged, atol=1e-5)


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(rank=0), "rank=0"), (dict(rank=-3), "rank=-3"), (dict(rank=2.5), "rank=2.5"),
    (dict(form="tt"), "form='tt'.*tucker.*cp"),
    (dict(targets=("attention",)), "unknown kind 'attention'.*accepted kinds: attn"),
    (dict(targets=("audio:attn",)), "tower 'audio'"),
    (dict(towers=("vision", "audio")), "towers="),
    (dict(towers=("vision",), targets=("text:mlp",)), "not in towers"),
    (dict(gated=True, towers=("vision",)), "gated=True"),
    (dict(dropout=1.0), "dropout=1.0"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModeApproxConfig(**kwargs)


def test_targets_matching_nothing_list_what_exists():
    model = build_tiny()
    for block in model.vision_blocks:  # a model whose vision blocks have no MLP
        block.mlp = nn.Identity()
    with pytest.raises(ValueError, match=r"'vision:mlp' matches no module(.|\n)*vision \(width 128\): "
                                         r"q, k, v, out \(attn: MultiheadAttention\)"):
        inject_mode_approx(model, ModeApproxConfig(rank=2, targets=("attn", "vision:mlp")))
    assert not any(isinstance(m, ModeApproxMultiheadAttention) for m in model.modules())


def test_inject_merge_unmerge_misuse(models):
    model = models["tiny"][0]
    with pytest.raises(ValueError, match="no mode-approximation adapters"):
        merge(model)
    keys = model.state_dict().keys()
    with pytest.raises(ValueError, match="train entry 'nonexistent_param' matches no parameter"):
        inject_mode_approx(model, ModeApproxConfig(rank=2, train=("nonexistent_param",)))
    assert model.state_dict().keys() == keys and all(p.requires_grad for p in model.parameters())  # rolled back
    with injected(model, ModeApproxConfig(rank=2)):
        with pytest.raises(RuntimeError, match="already injected"):
            inject_mode_approx(model, ModeApproxConfig(rank=2))
        with pytest.raises(RuntimeError, match="not merged"):
            unmerge(model)
        merge(model)
        with pytest.raises(RuntimeError, match="already merged"):
            merge(model)
    with pytest.raises(TypeError, match="ModeApproxConfig"):
        inject_mode_approx(model, {"rank": 2})


def test_mlp_not_multiple_of_width_is_a_clear_error():
    cfg = _hf_config()
    cfg.vision_config.intermediate_size = 100  # not a multiple of 64
    model = load_model(cfg)
    with pytest.raises(ValueError, match=r"fc1 is 100x64, not a multiple of the tower width 64"):
        inject_mode_approx(model, ModeApproxConfig(rank=2))
    inject_mode_approx(model, ModeApproxConfig(rank=2, targets=("attn", "text:mlp")))  # fine without it


def test_adapter_step_benchmark_runs(tmp_path):
    """The benchmark script stays runnable (a smoke run on 4 images; timings are not checked)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_adapter_step.py"
    spec = importlib.util.spec_from_file_location("bench_adapter_step", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out_file = tmp_path / "b.json"
    assert bench.main(["--batch-size", "4", "--repeats", "1", "--warmup", "0", "--ranks", "2", "--no-profile",
                       "--out", str(out_file)]) == 0
    row = json.loads(out_file.read_text())["ranks"][0]
    assert row["rank"] == 2 and 0 < row["attn_only_params"] < row["mode_approx_params"]
    assert set(row["train_step_seconds"]) == {"mode_approx", "lora", "lora_all", "lora_all_dropout",
                                              "mode_approx_no_dropout", "mode_approx_attn_only"}
    # the target is judged at equal dropout on both sides: either pair over 1.05 misses it
    pairs = {"ratio_step_no_dropout_over_lora_all": 0.98, "ratio_step_mode_approx_over_lora_all_dropout": 1.02,
             "ratio_step_mode_approx_over_lora_all": 1.15}
    assert bench.step_target_met(pairs)
    assert not bench.step_target_met({**pairs, "ratio_step_mode_approx_over_lora_all_dropout": 1.08})
