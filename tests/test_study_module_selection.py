"""Study 04 (module selection): config checks, the grid, the frame-mean baseline; one tiny run end to end
(marked slow: about a minute on a quiet 2-core machine)."""
import dataclasses

import pytest
import torch

from workbench.models import TINY_DIR, build_tiny, load_model
from workbench.studies import kit
from workbench.studies import module_selection as study
from workbench.studies.module_selection import data as sdata
from workbench.studies.module_selection.dual import DualEncoder
from workbench.studies.module_selection.measure import direction_metrics
from workbench.world import World

TINY = dict(claim_seeds=(), shared_layers=(0, 1), default_k=1, seeds=(0, 1), steps=5, batch_size=2, n_eval=4, frames=2,
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
    with pytest.raises(ValueError, match="qa_scoring='beam'"):
        study.Config(qa_scoring="beam")
    with pytest.raises(ValueError, match="shared layers k=-2"):
        study.Config(unshared_layers=(2, -2))


def test_quick_preset_and_grid():
    cfg = study.Config.preset(quick=True)
    assert cfg.default_k in cfg.shared_layers and len(cfg.seeds) >= 2
    default = study.Config()
    cells = study.plan_cells(default)
    ids = [c.id for c in cells]
    seeds = default.seeds
    assert ids[0] == "dual_encoder" and len(ids) == len(set(ids))
    assert sum(c.method == "modular" for c in cells) == 2 * len(seeds)  # k in {0, 2} x the seeds
    assert not [c for c in cells if c.method in ("no_temporal", "alone")]  # optional: -p methods
    assert [c.id for c in cells if c.method == "trivial"] == ["trivial"]  # one unseeded cell
    extra = study.plan_cells(study.Config(methods=("no_temporal", "alone")))
    assert {c.setting for c in extra if c.method == "no_temporal"} == {2}
    assert [c.setting for c in extra if c.method == "alone"] == [t for t in study.TASKS for _ in seeds]
    assert [(c.setting, c.seed) for c in cells if c.method == "direction"] == [(None, s) for s in seeds]
    # the capacity control at the paper's k by default, on the seeds; at any k but 0 (nothing to copy there)
    assert [(c.setting, c.seed) for c in cells if c.method == "modular_unshared"] == [(2, s) for s in seeds]
    wide = study.Config(unshared_layers=(0, 1, 2, "all"))
    assert [c.setting for c in study.plan_cells(wide) if c.method == "modular_unshared"] == \
        [k for k in (1, 2, "all") for _ in seeds]


def test_claims_carry_the_capacity_control_and_mind_the_gap():
    claims = {c.id: c for c in study.CLAIMS}
    for cid, base in (("MP-4.cap", "MP-4"), ("MP-2.cap", "MP-2")):
        assert claims[cid].a == claims[base].a and claims[cid].b[0] == "modular_unshared"
        assert claims[cid].metric == claims[base].metric and claims[cid].direction == claims[base].direction
    assert {claims[c].paper for c in ("MG-1", "MG-1.k", "MG-2")} == {"Liang et al., NeurIPS 2022"}
    cfg = study.Config()
    assert claims["MG-2"].sides([], cfg) == (("temperature", 0.01), ("temperature", 1.0))


def test_mind_the_gap_shift_claim_is_judged_from_the_cells_shift_minimum():
    """MG-1: the loss at the learned gap (lambda = 0) against the best shifted lambda, paired by seed and pair."""
    from workbench.eval import modality_gap as mg
    from workbench.studies.module_selection.measure import shift_minimum, shift_rows

    g = torch.Generator().manual_seed(0)
    rows = []
    for seed in (0, 1):
        a = torch.randn(24, 8, generator=g)
        b = a + 0.3 * torch.randn(24, 8, generator=g)
        b[:, 0] += 0.5
        emb = {"vision": a, "text": b}
        curve = shift_rows(emb, (-0.5, 0.0, 0.5, 1.0), 0.05)
        m = shift_minimum(emb, curve)
        assert m["shift_loss_0"] == pytest.approx(next(p["loss"] for p in curve if p["lam"] == 0.0))
        assert m["shift_loss_shifted"] == min(p["loss"] for p in curve if p["lam"] != 0.0)
        assert sum(m["shift_loss_0_items"]) / 24 == pytest.approx(m["shift_loss_0"], abs=1e-5)
        assert sum(m["shift_loss_shifted_items"]) / 24 == pytest.approx(m["shift_loss_shifted"], abs=1e-5)
        assert all(p["temperature"] == 0.05 for p in curve)
        rows.append({"method": "modular", "setting": 2, "seed": seed, **m})
    assert mg.contrastive_loss(a, b, 0.05) == pytest.approx(rows[-1]["shift_loss_0"])
    [verdict] = kit.judge([c for c in study.CLAIMS if c.id == "MG-1.k"], rows, study.Config())
    assert verdict.paired.n == 2 and verdict.paired.diff == pytest.approx(
        sum(r["shift_loss_0"] - r["shift_loss_shifted"] for r in rows) / 2)
    assert verdict.verdict in ("supported", "contradicted", "unresolved")
    [missing] = kit.judge([c for c in study.CLAIMS if c.id == "MG-1"], rows, study.Config())
    assert missing.verdict == "not run"


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


def test_evaluate_reuses_the_video_embeddings_for_direction_with_the_same_numbers(base):
    """`evaluate` hands direction_metrics the video-retrieval embeddings it already has: the direction and
    probe numbers are those of computing them again, to the bit."""
    from workbench.studies.module_selection.measure import evaluate
    from workbench.studies.module_selection.train import build_modular, task_path

    cfg = study.Config(**{**TINY, "n_eval": 8, "frames": 3, "n_probe": 8})
    data = sdata.eval_data(cfg, World(), base)
    model, _ = build_modular(base, cfg, 1, True, 0)
    with torch.no_grad():  # a nonzero temporal module, so that a clip and its reversal differ
        for p in model.vision.temporal.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        model.eval()
        path = task_path("video_retrieval", True)
        metrics, kept = evaluate(model, data, {"video_retrieval": path})
        again = direction_metrics(model, data, path)
    assert again.keys() <= metrics.keys() and {k: metrics[k] for k in again} == again
    assert again["reverse_cos"] < 1.0 - 1e-6


def test_first_items_cuts_every_task_set_to_its_first_items(base):
    """The path table's items (`path_items`): each set's first n items, every per-item field cut alike."""
    cfg = study.Config(**{**TINY, "n_eval": 6, "frames": 2})
    data = sdata.eval_data(cfg, World(), base)
    cut = sdata.first_items(data, 4)
    assert cut.sets.keys() == data.sets.keys()
    for task, s in cut.sets.items():
        full = data.sets[task]
        assert len(s) == 4, task
        for f in dataclasses.fields(s):
            v, w = getattr(s, f.name), getattr(full, f.name)
            if isinstance(w, torch.Tensor) and w.ndim and len(w) == 6:
                assert torch.equal(v, w[:4]), (task, f.name)
            elif isinstance(w, list) and len(w) == 6:
                assert v == w[:4], (task, f.name)
            else:
                assert v is w, (task, f.name)
    assert torch.equal(cut.probe_clips, data.probe_clips)
    assert sdata.first_items(data, 6).sets["qa"] is data.sets["qa"]  # nothing to cut


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
    # the shift curves at each model's own learned temperature, CLIP's 1/100 as a second, labelled curve
    assert set(result.shift) == {"tiny-world-clip", "modular k=1", "tiny-world-clip at CLIP's τ=0.01",
                                 "modular k=1 at CLIP's τ=0.01"}
    assert [p["lam"] for p in result.shift["tiny-world-clip"]] == [0.0, 1.0]
    closed = result.shift["tiny-world-clip"][1]["gap"]
    assert closed < result.shift["tiny-world-clip"][0]["gap"]
    dual = next(r for r in result.rows if r["method"] == "dual_encoder")
    assert result.shift["tiny-world-clip"][0]["temperature"] == pytest.approx(1 / dual["logit_scale"])
    assert result.shift["tiny-world-clip at CLIP's τ=0.01"][0]["temperature"] == 0.01
    for r in result.rows:
        if r["method"] in ("modular", "modular_unshared", "temperature", "dual_encoder"):
            assert r["logit_scale"] > 0
            assert len(r["image_l2m_items"]) == len(r["image_r1_items"]) == cfg.n_eval
    assert {(r["method"], r["setting"]) for r in result.table("k_sweep")} == \
        {("modular", 0), ("modular", 1), ("modular_unshared", 1)}
    ids = {c["id"]: c for c in result.claims}
    assert {"MP-4.cap", "MP-2.cap", "MG-1", "MG-1.k", "MG-2"} <= set(ids)
    assert ids["MG-1"]["verdict"] != "not run" and ids["MP-4.cap"]["verdict"] != "not run"
    for r in result.rows:
        assert "kept" not in r and "paths" not in r  # kept outputs stay out of result.json
        for m in ("image_r1", "video_r1", "qa_acc", "cls_acc", "slot_mean", "dir_acc"):
            assert r.get(m) is None or 0 <= r[m] <= 1
    assert result.findings and "(MP-4)" in result.headline and "[MP-4]" in result.findings
    assert (result.output_dir / "result.json").is_file()
    learned = {r["task"]: r for r in result.table("learned")}  # every task against its trivial score
    assert set(learned) == set(cfg.tasks) and all(isinstance(r["learned"], bool) for r in learned.values())
    assert "learned its tasks" in result.findings


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


def test_task_schedule_spreads_each_task_by_its_weight():
    from workbench.studies.module_selection.train import task_schedule

    tasks = ("a", "b", "c")
    assert task_schedule(tasks, None, 7) == ["a", "b", "c", "a", "b", "c", "a"]
    plan = task_schedule(tasks, (1, 3, 2), 12)
    assert [plan.count(t) for t in tasks] == [2, 6, 4]  # two cycles of 6 steps
    assert all(plan[i] != plan[i + 1] or plan[i] == "b" for i in range(11))  # spread, not in blocks
    with pytest.raises(ValueError, match="task_weights=.*5 integers >= 1, one per task in the order image_"):
        study.Config(task_weights=(1, 2))
    with pytest.raises(ValueError, match="task_weights=.*5 integers >= 1"):
        study.Config(task_weights=(1, 0, 1, 1, 1))
    # a subset of the tasks takes its own tasks' weights
    assert study.Config(tasks=("qa", "image_retrieval"), task_weights=(2, 1, 1, 5, 1)).weights == (5, 2)


def test_trivial_scores_are_the_majority_and_most_frequent_slots(base):
    from collections import Counter

    from workbench.data import modular_tasks as mt
    from workbench.studies.module_selection.trivial import FIT_ITEMS, trivial_metrics

    cfg = study.Config(**{**TINY, "n_eval": 24})
    world = World()
    data = sdata.eval_data(cfg, world, base)
    m = trivial_metrics(cfg, world, data)
    fit = mt.qa(world, cfg.train_split, range(FIT_ITEMS), 2)
    qa = data.sets["qa"]
    for kind in mt.QUESTION_KINDS:  # the majority answer of each kind, counted by hand
        top = Counter(int(a) for a, k in zip(fit.answers, fit.kinds) if k == kind).most_common(1)[0][0]
        hits = [int(int(a) == top) for a, k in zip(qa.answers, qa.kinds) if k == kind]
        assert m[f"qa_acc_{kind}"] == pytest.approx(sum(hits) / len(hits))
    assert len(m["qa_acc_items"]) == len(m["slot_mean_items"]) == len(m["cls_acc_items"]) == 24
    assert m["slot_mean"] == pytest.approx(sum(m["slot_mean_items"]) / 24)
    unique = len(set(data.sets["image_retrieval"].captions)) == 24
    assert not unique or m["image_r1"] == pytest.approx(1 / 24)  # chance with one positive per pair
    assert len(m["dir_acc_items"]) == 48 and m["dir_acc"] == 0.25
