"""Study 04 (module selection): config checks, the grid, the frame-mean baseline; one tiny run end to end
(marked slow: about a minute on a quiet 2-core machine)."""
import dataclasses

import pytest
import torch

from workbench.models import TINY_DIR, build_tiny, load_model
from workbench.studies import module_selection as study
from workbench.studies.module_selection import data as sdata
from workbench.studies.module_selection.dual import DualEncoder
from workbench.studies.module_selection.measure import direction_metrics
from workbench.world import World

TINY = dict(shared_layers=(0, 1), default_k=1, seeds=(0, 1), claim_seeds=(), steps=5, batch_size=2, n_eval=4, frames=2,
            temperatures=(1.0, 0.05), temperature_steps=1, shift_lambdas=(0.0, 1.0), flops_batch=1, latents=4,
            show_samples=2)


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    if (TINY_DIR / "open_clip_config.json").is_file():
        return load_model("tiny-world-clip")
    return build_tiny().eval()


@pytest.fixture(scope="module")
def result(base, tmp_path_factory):
    torch.set_num_threads(1)
    cfg = study.Config(**TINY)
    return study.run(cfg, output_dir=tmp_path_factory.mktemp("out"), model=base, progress=False, use_cache=False)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="shared layers k=-1"):
        study.Config(shared_layers=(0, -1))
    with pytest.raises(ValueError, match="methods=.*unknown 'lora'"):
        study.Config(methods=("lora",))
    with pytest.raises(ValueError, match="frames=1"):
        study.Config(frames=1)
    with pytest.raises(ValueError, match="tasks=.*unknown"):
        study.Config(tasks=("vqa",))
    with pytest.raises(TypeError, match="no field"):
        study.Config.preset(quick=True, rank=3)


def test_quick_preset_and_grid():
    cfg = study.Config.preset(quick=True)
    assert cfg.default_k in cfg.shared_layers and len(cfg.seeds) >= 2
    default = study.Config()
    cells = study.plan_cells(default)
    ids = [c.id for c in cells]
    seeds = default.seeds
    assert ids[0] == "dual_encoder" and len(ids) == len(set(ids))
    assert sum(c.method == "modular" for c in cells) == 4 * len(seeds)  # k in {0, 1, 2, all} x the seeds
    assert {c.setting for c in cells if c.method == "no_temporal"} == {2}
    assert [(c.setting, c.seed) for c in cells if c.method == "direction"] == [(None, s) for s in seeds]


def test_direction_head_on_frame_means_gives_a_clip_and_its_reversal_one_answer(base):
    """Trained for direction alone, a frame-mean encoder still cannot tell a clip from its reversal; the
    temporal modules, given the same steps, change the embedding under reversal."""
    from workbench.studies.module_selection.measure import head_direction_metrics
    from workbench.studies.module_selection.train import train_direction

    cfg = study.Config(**{**TINY, "n_eval": 8, "frames": 3, "direction_steps": 6, "batch_size": 4})
    world = World()
    data = sdata.eval_data(cfg, world, base)
    off = head_direction_metrics(train_direction(base, world, cfg, False, 0).model, data)
    assert not any(f and b for f, b in zip(off["dir_acc_items"][:8], off["dir_acc_items"][8:]))
    assert off["dir_acc"] <= 0.5 and off["reverse_cos"] == pytest.approx(1.0, abs=1e-6)
    on = head_direction_metrics(train_direction(base, world, cfg, True, 0).model, data)
    assert on["reverse_cos"] < 1.0 - 1e-5


def test_frame_mean_cannot_see_the_sign_of_motion(base):
    """A clip and its time reversal get the same frame-mean embedding: sign accuracy is at most 1/2."""
    cfg = study.Config(**{**TINY, "n_eval": 8, "frames": 3})
    data = sdata.eval_data(cfg, World(), base)
    m = direction_metrics(DualEncoder(base), data)
    hits = m["dir_acc_items"]
    forward, backward = hits[:8], hits[8:]
    assert not any(f and b for f, b in zip(forward, backward))  # never both right
    assert m["sign_acc"] <= 0.5
    assert torch.equal(data.reversed_clips[:, 0], data.sets["video_retrieval"].media[:, -1])
    # the linear probe sees the same embedding for a clip and its reversal: one prediction for both
    probe = m["probe_dir_acc_items"]
    assert not any(f and b for f, b in zip(probe[:8], probe[8:])) and m["probe_dir_acc"] <= 0.5
    assert m["reverse_cos"] == pytest.approx(1.0, abs=1e-5)


def test_direction_words_are_untrained_rows_of_tiny_world_clip(base):
    """The reading the findings give for direction at chance: the direction words' embedding rows."""
    if not (TINY_DIR / "open_clip_config.json").is_file():
        pytest.skip("needs the shipped tiny-world-clip (random weights have no learned rows)")
    rows = {r["word"]: r["norm"] for r in study.direction_words(base)}
    known = [rows[w] for w in World.pretrain_classes]
    assert max(rows[d] for d in ("left", "right", "up", "down")) < 0.5 * min(known)


def test_with_direction_swaps_only_the_direction_word():
    assert sdata.with_direction("a red star moving left on a printed page.", "up") == \
        "a red star moving up on a printed page."


@pytest.mark.slow
def test_run_writes_every_table(result):
    cfg = result.config
    assert [(r["method"], r["setting"], r["seed"]) for r in result.rows] == \
        [(c.method, c.setting, c.seed) for c in study.plan_cells(cfg)]
    assert {r["setting"] for r in result.table("k_sweep")} == {0, 1}
    paths = result.table("paths")
    assert {r["task"] for r in paths} == set(cfg.tasks) and all(r["flops"] > 0 for r in paths)
    video = {r["path"]: r["flops"] for r in paths if r["task"] == "video_retrieval"}
    assert video["vision -> temporal -> universal -> text"] > video["vision -> universal -> text"]
    assert set(result.shift) == {"tiny-world-clip", "modular k=1"}
    assert [p["lam"] for p in result.shift["tiny-world-clip"]] == [0.0, 1.0]
    closed = result.shift["tiny-world-clip"][1]["gap"]
    assert closed < result.shift["tiny-world-clip"][0]["gap"]
    for r in result.rows:
        assert "kept" not in r and "paths" not in r  # kept outputs stay out of result.json
        for m in ("image_r1", "video_r1", "qa_acc", "cls_acc", "slot_mean", "dir_acc"):
            assert r.get(m) is None or 0 <= r[m] <= 1
    assert result.findings and "(MP-4)" in result.headline and "[MP-4]" in result.findings
    assert (result.output_dir / "result.json").is_file()


@pytest.mark.slow
def test_kept_outputs_feed_figures_and_explorer(result):
    from workbench.viz import module_selection as mviz

    kept = study.kept_by_name(result)
    assert {"tiny-world-clip", "modular k=0", "modular k=1"} <= set(kept)
    outs = result.kept[("modular", 1)]["outputs"]
    assert set(outs) == set(result.config.tasks) and len(outs["qa"]) > 2  # default + every valid path
    for fig in (mviz.gap_vs_k(result.table("k_sweep")), mviz.score_vs_cost(result.table("paths")),
                mviz.embedding_map(kept), mviz.cosine_histograms(kept)):
        assert fig.axes
    ex = mviz.ModuleSelectionExplorer(result.kept, result.data, result.default_k, 2)
    assert ex.image.value and "target" in ex.info.value
    ex.controls["view"].value = "across k"
    assert ex.controls["path"].disabled and ex.controls["k"].disabled and "k=0" in ex.info.value
    ex.controls["view"].value = "one path"
    ex.controls["task"].value = "captioning"
    assert ex.controls["path"].options[0] == "vision -> temporal -> universal -> decoder"
    assert not ex.controls["path"].disabled


@pytest.mark.slow
def test_same_seed_same_numbers(base, result):
    cfg = dataclasses.replace(result.config, methods=("modular",), shared_layers=(0,), seeds=(0,))
    again = study.run(cfg, output_dir=result.output_dir / "again", model=base, progress=False, use_cache=False)
    first = next(r for r in result.rows if r["method"] == "modular" and r["setting"] == 0 and r["seed"] == 0)
    [second] = again.rows
    for m in ("image_r1", "image_l2m", "qa_acc", "final_loss"):
        assert first[m] == second[m], m


def test_shift_finding_says_whether_it_agrees_with_liang():
    from types import SimpleNamespace

    from workbench.studies.module_selection import findings

    cfg = SimpleNamespace(shift_temperature=0.01, temperature_steps=1)
    point = lambda lam, gap, loss, acc: {"lam": lam, "gap": gap, "loss": loss, "accuracy": acc}
    closes = [point(0.0, 0.3, 2.0, 0.5), point(1.0, 0.0, 1.5, 0.5)]
    keeps = [point(0.0, 0.3, 1.0, 0.5), point(1.0, 0.0, 1.5, 0.4)]
    cmp = findings.Comparisons([])
    (differs,) = findings._gap([], {"m": closes}, cfg, cmp)
    (agrees,) = findings._gap([], {"m": keeps}, cfg, cmp)
    assert "differs from Liang" in differs and "no shift raises it" in differs
    assert "agrees with Liang" in agrees and "λ=0" in agrees


def test_validation_slice_is_not_the_test_set_and_scores_candidates(base):
    from workbench.studies.module_selection.validation import validation_scores

    cfg = study.Config(**{**TINY, "steps": 2, "n_eval": 6})
    world = World()
    val, test = sdata.val_data(cfg, world, base), sdata.eval_data(cfg, world, base)
    assert cfg.train_split != cfg.test_split  # another stream of the world, past every training and probe index
    assert sdata.VAL_START > sdata.PROBE_START + cfg.n_probe and sdata.VAL_START < sdata.TRAIN_STRIDE - cfg.n_eval
    assert not torch.equal(val.sets["image_retrieval"].media, test.sets["image_retrieval"].media)
    rows = validation_scores(cfg, base, [{"new_lr": 1e-3}, {"new_lr": 3e-3}])
    assert [r["new_lr"] for r in rows] == [1e-3, 3e-3]
    for r in rows:
        assert set(cfg.tasks) <= set(r)
        assert r["val_mean"] == pytest.approx(sum(r[t] for t in cfg.tasks) / len(cfg.tasks))
