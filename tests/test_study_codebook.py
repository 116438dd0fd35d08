"""Study 03 (codebook): config checks, the grid, the feature cache, and a micro run end to end (cached rerun)."""
import pytest
import torch

from workbench.methods.codebook import CodebookConfig
from workbench.studies import codebook as study
from workbench.studies.codebook.data import split_indices


def test_config_bad_input():
    with pytest.raises(ValueError, match="unknown 'nope'"):
        study.Config(methods=("unicode", "nope"))
    with pytest.raises(ValueError, match=r"p_silent=1\.2 is outside \[0, 1\]"):
        study.Config(p_silent=1.2)
    with pytest.raises(ValueError, match="modalities=.*smell"):
        study.Config(modalities=("video", "smell"))
    with pytest.raises(ValueError, match="codebook_sizes=.*got \\[0\\]"):
        study.Config(codebook_sizes=(16, 0))
    with pytest.raises(ValueError, match="codes=0 must be a positive integer"):
        study.Config(codes=0)
    with pytest.raises(ValueError, match="must be a tuple"):
        study.Config(seeds=0)
    with pytest.raises(TypeError, match="has no field"):
        study.Config.preset(True, ranks=(1,))


def test_quick_preset_and_grid():
    cfg = study.Config.preset(True)
    assert cfg.n_train == study.QUICK["n_train"] and cfg.codebook_sizes == (16,)
    cells = study.plan_cells(cfg)
    unicode = [c for c in cells if c.method == "unicode"]
    assert sorted({c.setting for c in unicode}) == [16, cfg.codes]
    assert all(c.setting == cfg.codes for c in cells if c.method != "unicode")
    assert len(cells) == (len(cfg.methods) + 1) * len(cfg.seeds)
    sweep = study.plan_cells(study.Config(codebook_sizes=(16, 400, 1024), seeds=(0,)))
    assert sorted(c.setting for c in sweep if c.method == "unicode") == [16, 400, 1024]
    full = study.Config()
    assert full.methods == "all" and len(full.seeds) + len(full.claim_seeds) >= 8
    assert set(study.STUDY.method_ids(full)) == set(study.METHODS) - set(study.OPTIONAL)
    assert {"unicode", "plain_vq", "vq_ema_dcid", "vqtorch", "fsq", "rvq", "per_modality", "masked_infonce", "no_club",
            "no_cpc", "no_cmcm", "reset_every", "club_specific_only", "unicode_av", "plain_vq_av",
            "no_club_cpc", "no_mm_ema", "no_reset", "no_mm_ema_reset", "cross_09"} == set(study.METHODS)
    assert split_indices(full, "train").stop <= split_indices(full, "val").start
    assert split_indices(full, "val").stop <= split_indices(full, "test").start


def test_method_configs():
    cfg = study.Config()
    full = study.codebook_config("unicode", 400, cfg)
    assert isinstance(full, CodebookConfig) and full.quantizer == "shared_ema" and full.club and full.cpc
    assert full.mm_ema and full.reset and full.dim == cfg.dim and full.codes == 400
    plain = study.codebook_config("plain_vq", 400, cfg)
    assert plain.quantizer == "vq_ema" and not plain.club and not plain.cpc and not plain.uses_cmcm
    nc = study.codebook_config("no_club_cpc", 64, cfg)
    assert not nc.club and not nc.cpc and nc.codes == 64 and nc.mm_ema
    assert not study.codebook_config("no_mm_ema_reset", 400, cfg).mm_ema
    assert study.codebook_config("masked_infonce", 400, cfg).masked_infonce
    assert study.codebook_config("fsq", 400, cfg).n_codes == 400


MICRO = dict(n_train=12, n_val=4, n_test=6, train_steps=3, batch_size=6, head_steps=3, seeds=(0, 1), claim_seeds=(),
             methods=("unicode", "plain_vq"), codebook_sizes=(), codes=32, checkpoints=2)


@pytest.mark.slow  # a whole study end to end: features, 4 cells, kept models (about 2 CPU-minutes)
def test_micro_run_and_cached_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    cfg = study.Config(**MICRO)
    r = study.run(cfg, output_dir=tmp_path / "out", progress=False)
    assert [(x["method"], x["setting"], x["seed"]) for x in r.rows] == \
        [(c.method, c.setting, c.seed) for c in study.plan_cells(cfg)]
    assert r.metrics["cells_trained"] == len(r.rows) and r.metrics["feature_seconds"] > 0
    for row in r.rows:
        for p in ("va", "av", "vt", "vv"):
            assert 0 <= row[f"seq_{p}"] <= 1 and len(row[f"seq_{p}_items"]) == cfg.n_test
    assert {"methods", "comparisons", "paper", "sizes", "transfer_unicode", "transfer_plain_vq"} <= set(r.tables)
    assert "[CMG-1]" in r.findings and "plain VQ" in r.findings and "54.1 / 55.0" in r.findings
    assert {c["id"] for c in r.claims} == {c.id for c in study.CLAIMS}
    cmg1 = next(c for c in r.claims if c["id"] == "CMG-1")
    assert cmg1["seeds"] == len(cfg.seeds) and cmg1["a"] == "unicode@32" and cmg1["verdict"] != "not run"
    assert all(c["verdict"] in ("beyond noise", "within noise") for c in r.comparisons)
    kept = r.kept["unicode"]
    assert kept.steps == [0, cfg.train_steps] and len(kept.usages) == 2
    assert int(kept.usage.sum()) == 3 * cfg.n_test * cfg.steps  # every test step of every modality, once
    assert kept.codes[-1]["audio"].shape == (cfg.n_test, cfg.steps)
    ex = study.exemplars(cfg, 2)
    assert ex["video"].shape[:2] == (2, cfg.steps) and len(ex["text"]) == 2
    assert (tmp_path / "out" / "result.json").is_file()
    again = study.run(cfg, output_dir=tmp_path / "out2", progress=False)
    assert again.metrics["cells_cached"] == len(r.rows) and again.metrics["feature_seconds"] == 0
    assert [x["seq_va"] for x in again.rows] == [x["seq_va"] for x in r.rows]
    cell = study.plan_cells(cfg)[-1]
    fresh = study.run_cell(cell, cfg, r.splits, study.codebook_config(cell.method, cell.setting, cfg))  # same seed
    keys = ("seq_va", "step_av", "dead")
    assert {k: fresh[k] for k in keys} == {k: r.rows[-1][k] for k in keys}


def test_standardise_uses_train_statistics_only():
    from workbench.data import EventFeatures
    from workbench.studies.codebook.data import Splits, standardise

    def feats(shift):
        y = torch.zeros(5, 3, dtype=torch.long)
        return EventFeatures({"audio": torch.randn(5, 3, 4) + shift}, y, y[:, 0], {"audio": y == 0}, ("a",))

    s = standardise(Splits(feats(0.0), feats(0.0), feats(10.0), 0.0))
    x = s.train.features["audio"].flatten(0, 1)
    assert torch.allclose(x.mean(0), torch.zeros(4), atol=1e-5)
    assert s.test.features["audio"].mean() > 5  # the test shift is kept, not normalised away


def test_headline_gives_the_verdict_of_the_headline_claim():
    from types import SimpleNamespace

    from workbench.studies.codebook import CLAIMS, findings
    from workbench.studies.kit import judge

    cfg = SimpleNamespace(codes=400, sizes=(400,))
    rows = [{"method": m, "setting": 400, "seed": s, "seq_va": base + 0.01 * s, "seq_av": base + 0.02 * s}
            for m, base in (("unicode", 0.4), ("plain_vq", 0.1)) for s in range(3)]
    table = [{"method": m, "codes": 400, "seq_va": v, "seq_av": v, "seeds": 3} for m, v in (("unicode", .41),
                                                                                             ("plain_vq", .11))]
    text = findings.headline(table, cfg, judge(CLAIMS, rows, cfg))
    assert "(CMG-1): supported" in text and "+30.0 points" in text and "paper 54.1 / 55.0" in text
    flipped = [dict(r, method={"unicode": "plain_vq", "plain_vq": "unicode"}[r["method"]]) for r in rows]
    assert "(CMG-1): contradicted" in findings.headline(table, cfg, judge(CLAIMS, flipped, cfg))
    one = [r for r in rows if r["seed"] == 0]
    assert "(CMG-1): unresolved" in findings.headline(table, cfg, judge(CLAIMS, one, cfg))
    assert "(CMG-1): not run" in findings.headline(table[:1], cfg, judge(CLAIMS, rows[:3], cfg))


def test_findings_say_when_no_code_index_is_shared():
    from workbench.studies.codebook import findings

    rows = [{"method": "unicode", "setting": 400, "seed": s, "shared_two": v, "dead": 50} for s, v in enumerate((0, 0))]
    [none] = findings._sharing(rows, 400)
    assert "0.0% of the used codes" in none and "no index is shared" in none
    [some] = findings._sharing([{**r, "shared_two": 0.25} for r in rows], 400)
    assert "25.0%" in some and "no index is shared" not in some
    assert findings._sharing(rows, 16) == []  # no cells at that size: no sentence
