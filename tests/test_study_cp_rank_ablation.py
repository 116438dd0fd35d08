"""Study 2 (rank ablation): resumable sweep, cell planning, summaries, determinism, bad config."""
import json
import statistics

import pytest
import torch

from workbench.methods.baselines import lora_param_count
from workbench.studies import cp_rank_ablation as s
from workbench.studies import kit
from workbench.studies.cp_rank_ablation.cells import mode_approx_budget
from workbench.world import World

SMALL = dict(ranks=(2,), seeds=(0,), claim_seeds=(), methods=("zero_shot", "mode_approx", "lora", "linear_probe"),
             steps=2, batch_size=8, n_eval=16, n_heldout=10, n_val=8, eval_every=1, keep_rank=2, real_scale="off")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def sweep(tiny_random, tmp_path_factory):
    """One small sweep, run once for the module, in its own cache."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("sweep")
    mp.setenv("WORKBENCH_CACHE", str(root / "cache"))
    cfg = s.Config(**SMALL)
    yield cfg, s.run(cfg, output_dir=root / "a", model=tiny_random, progress=False), root
    mp.undo()


def test_sweep_is_resumable(tiny_random, sweep, monkeypatch):
    cfg, first, root = sweep
    monkeypatch.setenv("WORKBENCH_CACHE", str(root / "cache"))
    ids = {c.id for c in s.plan_cells(cfg, tiny_random)}
    assert set(first.trained) == ids and not first.cached
    second = s.run(cfg, output_dir=root / "b", model=tiny_random, progress=False)
    assert second.trained == [] and set(second.cached) == ids  # a second run trains nothing
    assert second.table == first.table
    # losing one finished cell retrains that cell only
    folder = s.STUDY.cache(cfg, s.build_context(cfg, model=tiny_random)).folder
    (folder / "lora-r1-s0.json").unlink()
    third = s.run(cfg, output_dir=root / "c", model=tiny_random, progress=False)
    assert third.trained == ["lora-r1-s0"]
    saved = json.loads((root / "c" / "result.json").read_text())
    assert {r["method"] for r in saved["tables"]["methods"]} == set(cfg.methods)
    assert saved["findings"] and saved["metrics"]["cells_trained"] == 1


def test_rows_hold_exact_counts_and_bounded_metrics(tiny_random, sweep):
    cfg, result, _ = sweep
    rows = {r["method"]: r for r in result.table}
    assert rows["zero_shot"]["trainable"] == 0
    assert rows["mode_approx"]["trainable"] == mode_approx_budget(tiny_random, 2, cfg)
    assert rows["lora"]["trainable"] == lora_param_count(tiny_random, rows["lora"]["rank"])
    assert rows["lora"]["matches_R"] == [2] and rows["mode_approx"]["lora_rank"] == rows["lora"]["rank"]
    assert rows["linear_probe"]["trainable"] == len(World.pretrain_classes) * tiny_random.embed_dim  # heldout classes
    assert rows["linear_probe"]["i2t_r1"] is None  # classification only
    for r in result.table:
        assert all(r[m] is None or 0.0 <= r[m] <= 1.0 for m in s.METRICS)
    f = result.factors  # the kept adapter (R=2, seed 0): shared factors and every mode vector
    assert f.U.shape == (2, 128) and f.V.shape == (128, 2) and f.core.shape == (2, 2, 2)
    assert len(f.modes) == 7 * (4 + 4 + 4) and set(f.modes) == set(f.modes_init)
    assert f.V.abs().sum() > 0  # V starts at zero: it was trained


def test_same_seed_same_numbers(tiny_random, world):
    cfg = s.Config(**{**SMALL, "n_eval": 8, "n_heldout": 8})
    data = s.eval_data(cfg, world)
    cell = kit.Cell("mode_approx", 2, 0)
    spec = s.METHODS["mode_approx"]
    a = s.run_cell(cell, spec, cfg, tiny_random, s.Batches(world, tiny_random, cfg, 0), data)
    b = s.run_cell(cell, spec, cfg, tiny_random, s.Batches(world, tiny_random, cfg, 0), data)
    assert {m: a[m] for m in s.METRICS} == {m: b[m] for m in s.METRICS}
    assert a["final_loss"] == b["final_loss"]


def test_lora_cells_are_deduplicated(tiny_random):
    cfg = s.Config(ranks=(1, 2, 4, 8, 64), seeds=(0, 1), methods=("mode_approx", "lora"))
    cells = s.plan_cells(cfg, tiny_random)
    lora = sorted({c.setting for c in cells if c.method == "lora"})
    matched = s.lora_matches(cfg, tiny_random)
    assert lora == sorted({m.rank for m in matched.values()})
    assert len(lora) < len(cfg.ranks)  # small R all need LoRA rank 1
    assert sum(c.method == "mode_approx" for c in cells) == len(cfg.ranks) * len(cfg.seeds)


def test_summary_mean_and_std():
    rows = [{"method": "bitfit", "setting": None, "seed": k, "trainable": 10, "total": 100, "train_seconds": 1.0,
             **{m: v for m in s.METRICS}} for k, v in enumerate((0.2, 0.4, 0.9))]
    rows[0]["i2t_r1"] = None
    [row] = s.summarise(rows, s.Config(methods=("bitfit",), seeds=(0, 1, 2)), model=None)
    assert row["acc_test"] == pytest.approx(statistics.fmean([0.2, 0.4, 0.9]), abs=1e-4)
    assert row["acc_test_std"] == pytest.approx(statistics.stdev([0.2, 0.4, 0.9]), abs=1e-4)
    assert row["i2t_r1"] == pytest.approx(0.65, abs=1e-4) and row["seeds"] == 3
    lo, hi = row["acc_test_ci"]  # the 95% t-interval of the mean over the 3 seeds
    assert lo < row["acc_test"] < hi and hi - lo == pytest.approx(2 * 4.302653 * row["acc_test_std"] / 3 ** 0.5,
                                                                  rel=1e-5)


def test_cache_follows_the_weights(tiny_random, cache):
    import copy

    cfg = s.Config(**SMALL)
    other = copy.deepcopy(tiny_random)
    with torch.no_grad():
        other.model.logit_scale.add_(0.01)
    key = lambda c, m: s.STUDY.cache(c, s.build_context(c, model=m)).key
    assert key(cfg, tiny_random) != key(cfg, other)
    assert key(cfg, tiny_random) == key(s.Config(**{**SMALL, "ranks": (2, 4)}), tiny_random)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="unknown 'dora'; accepted: zero_shot, mode_approx"):
        s.Config(methods=("dora",))
    with pytest.raises(ValueError, match="ranks=.*positive"):
        s.Config(ranks=(0, 2))
    with pytest.raises(ValueError, match="must be a tuple"):
        s.Config(ranks=8)
    with pytest.raises(ValueError, match="real_scale='all'"):
        s.Config(real_scale="all")
    with pytest.raises(ValueError, match="index ranges overlap"):
        s.Config(n_eval=2_000_000)
    with pytest.raises(ValueError, match="backdrop_contrast=1.5"):
        s.Config(backdrop_contrast=1.5)
    quick = s.Config.preset(quick=True, steps=None, seeds=(3,))
    assert quick.steps == 4 and quick.seeds == (3,) and quick.ranks == (2, 8)


def test_cells_carry_validation_curves_and_recall_items(sweep):
    cfg, result, _ = sweep
    for r in result.rows:
        if r["method"] == "zero_shot":
            assert r["curve"] == []
            continue
        assert [p["step"] for p in r["curve"]] == [0, 1, 2]  # every eval_every=1 step, and the end
        assert all(0.0 <= p["acc"] <= 1.0 for p in r["curve"])
        assert (r["curve"][0]["r1"] is None) == (r["method"] == "linear_probe")
    ma = next(r for r in result.rows if r["method"] == "mode_approx")
    assert ma["r1"] == pytest.approx((ma["i2t_r1"] + ma["t2i_r1"]) / 2)
    assert len(ma["r1_items"]) == 2 * cfg.n_eval and statistics.fmean(ma["r1_items"]) == pytest.approx(ma["r1"])
    assert result.chosen_rank == 2 and {(c.method, c.rank) for c in result.curves} >= {("mode_approx", 2)}
    assert result.headline and "paper's claim" in result.headline


def test_retrieval_ranks_within_galleries():
    """Galleries of about `gallery` pairs: a query's text is found among its own gallery's only, recall is
    the mean over every query, sizes differ by at most one, and a gallery of all pairs is plain retrieval."""
    from workbench.eval.retrieval import retrieval_from_features
    from workbench.studies.cp_rank_ablation.cells import _retrieval, galleries

    g = torch.Generator().manual_seed(0)
    img = torch.randn(10, 8, generator=g)
    txt = img + 0.8 * torch.randn(10, 8, generator=g)
    caps = [f"c{i}" for i in range(10)]
    whole = retrieval_from_features(img, txt, caps)
    one = _retrieval(img, txt, caps, gallery=10)
    assert one["i2t_r1"] == pytest.approx(whole.i2t_r1) and one["t2i_r5"] == pytest.approx(whole.t2i_r5)
    assert _retrieval(img, txt, caps, gallery=50)["r1_items"] == one["r1_items"]  # n < gallery: one gallery
    # pair 0's text placed beside pair 9's image: in one gallery image 9 finds text 0 (a miss), in galleries of
    # 5 it cannot (text 0 is in the other gallery), so it finds its own
    img2, txt2 = img.clone(), txt.clone()
    txt2[0] = img2[9] * 10
    assert _retrieval(img2, txt2, caps, gallery=10)["i2t_r1_items"][9] == 0
    two = _retrieval(img2, txt2, caps, gallery=5)
    assert two["i2t_r1_items"][9] == 1
    halves = [retrieval_from_features(img2[a:b], txt2[a:b], caps[a:b]) for a, b in ((0, 5), (5, 10))]
    assert two["t2i_r1"] == pytest.approx((halves[0].t2i_r1 + halves[1].t2i_r1) / 2)
    assert statistics.fmean(two["r1_items"]) == pytest.approx(two["r1"])
    # galleries of about `gallery` pairs, never a gallery of one pair
    assert galleries(11, 5) == [(0, 5), (5, 11)] and galleries(1000, 250) == [(0, 250), (250, 500), (500, 750),
                                                                              (750, 1000)]
    assert galleries(48, 250) == [(0, 48)]


def test_zero_shot_is_the_first_point_of_every_contrastive_curve(sweep):
    """Step 0 is the untouched model: every adapter's first validation point is zero-shot's."""
    _, result, _ = sweep
    first = {r["method"]: r["curve"][0] for r in result.rows if r["curve"]}
    assert first["mode_approx"] == pytest.approx(first["lora"])


def test_plateau_and_seeds_needed():
    from workbench.studies.cp_rank_ablation.findings import Curve, plateau_step, seeds_needed

    c = Curve("mode_approx", 8, [0, 10, 20, 30, 40], [0.2, 0.5, 0.605, 0.595, 0.6], 3)
    assert plateau_step(c) == 20  # within 1 point of the final 0.6 from step 20 on
    assert plateau_step(c._replace(score=[0.2, 0.5, 0.605, 0.7, 0.6])) == 40
    p = kit.Paired("r1", "a", "b", diff=0.01, lo=-0.02, hi=0.04, n=3, detectable=0.03)
    assert seeds_needed(p) == "about 27"  # 3 * (0.03 / 0.01) ** 2


def test_token_norms_name_every_class(tiny_random):
    rows = s.word_token_norms(tiny_random)
    assert [r["word"] for r in rows] == list(World.classes)
    assert {r["kind"] for r in rows} == {"pretraining class", "novel class"}
    assert all(r["norm"] > 0 and r["tokens"] >= 1 for r in rows)
    [other] = s.word_token_norms(tiny_random, ["grass"])
    assert other["kind"] == "other word"


def _lora_modules(model) -> set[str]:
    """The modules (inside model.model) holding a trainable LoRA update (an attention's out_proj LoRA counts as
    its attention's)."""
    return {n.split(".lora_")[0].removesuffix(".base_layer.out_proj") for n, p in model.model.named_parameters()
            if "lora_" in n and p.requires_grad}


@pytest.mark.parametrize("placement", ["all", "paper"])
def test_lora_same_sites_sits_where_mode_approx_does(tiny_random, placement):
    """`lora_same_sites` puts LoRA on exactly the modules (and matrices) mode approximation adapts at the study's
    placement, at the rank whose count is nearest mode approximation's budget at each R."""
    from workbench.methods.mode_approx import adapted_modules, inject_mode_approx

    cfg = s.Config(**{**SMALL, "methods": ("mode_approx", "lora_same_sites"), "ranks": (2, 8, 32)},
                   placement=placement)
    ma = tiny_random.copy()
    inject_mode_approx(ma, s.mode_approx_config("mode_approx", 8, 0, cfg))
    wrapped = {n.removeprefix("model.") for n, m in ma.named_modules() if type(m).__name__.startswith("ModeApprox")}
    sites = s.mode_approx_sites(tiny_random, cfg)
    assert set(sites) == wrapped == set(adapted_modules(tiny_random, s.mode_approx_config("mode_approx", 32, 1, cfg)))
    assert all(m == ("q", "k", "v") for n, m in sites.items() if n.startswith("transformer.") and n.endswith(".attn")) \
        == (placement == "paper")
    model = tiny_random.copy()
    setup = s.METHODS["lora_same_sites"].setup(model, kit.Cell("lora_same_sites", 3, 0), cfg, ())
    assert _lora_modules(model) == set(sites)
    assert setup.trainable == lora_param_count(tiny_random, 3, sites=sites)
    per_rank = lora_param_count(tiny_random, 1, sites=sites)
    for R, match in s.lora_matches(cfg, tiny_random, sites=True).items():
        budget = mode_approx_budget(tiny_random, R, cfg)
        assert match.budget == budget and match.params == match.rank * per_rank
        assert all(abs(match.params - budget) <= abs(k * per_rank - budget) for k in range(1, 4 * match.rank + 2))
    cells = s.plan_cells(cfg, tiny_random)
    planned = sorted({c.setting for c in cells if c.method == "lora_same_sites"})
    assert planned == sorted({m.rank for m in s.lora_matches(cfg, tiny_random, sites=True).values()})


def test_lora_dropout_is_same_sites_lora_at_mode_approx_dropout(tiny_random):
    cfg = s.Config(**{**SMALL, "methods": ("lora_dropout",)}, dropout=0.2)
    model = tiny_random.copy()
    s.METHODS["lora_dropout"].setup(model, kit.Cell("lora_dropout", 1, 0), cfg, ())
    assert _lora_modules(model) == set(s.mode_approx_sites(tiny_random, cfg))
    drops = {m.p for n, m in model.model.named_modules() if n.endswith("lora_dropout.default")}
    assert drops == {0.2}


def test_placement_and_same_sites_claim():
    """The default keeps today's placement and the attention LoRA in AU-2; the same-sites LoRA is opt-in, AU-2.sites
    reads it (not run by default)."""
    assert s.Config().placement == "all"
    with pytest.raises(ValueError, match="placement"):
        s.Config(placement="text")
    claims = {c.id: c for c in s.CLAIMS}
    assert claims["AU-2"].b[0] == "lora" and claims["AU-2"].headline
    assert claims["AU-2.sites"].b[0] == "lora_same_sites" and claims["AU-2.sites"].a == claims["AU-2"].a
    assert s.METHODS["lora_same_sites"].optional and s.METHODS["lora_dropout"].optional
    assert "lora_same_sites" not in s.STUDY.method_ids(s.Config())
