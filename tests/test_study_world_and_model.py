"""Study 00 (world_and_model) and its pictures: invariants on a tiny n with random-init models."""
import json

import matplotlib.pyplot as plt
import pytest
import torch

from workbench import viz
from workbench.eval import zero_shot_accuracy
from workbench.models import load_model
from workbench.studies import world_and_model as study
from workbench.world import World

N = 30  # images per split: balanced labels (index % 10) make it 3 per class


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory, tiny_random):
    cfg = study.Config(n_eval=N, splits=("heldout", "ood_flipped", "ood_style"))
    return study.run(cfg, output_dir=tmp_path_factory.mktemp("out"), model=tiny_random, use_cache=False)


def test_result_json_holds_one_number_per_split(quick_result):
    r = quick_result
    data = json.loads((r.output_dir / "result.json").read_text())
    acc = data["metrics"]["zero_shot_accuracy"]
    assert list(acc) == ["heldout", "ood_flipped", "ood_style"]
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    assert [row["split"] for row in data["tables"]["accuracy_per_split"]] == list(acc)
    assert data["config"]["n_eval"] == N and data["findings"]


def test_confusion_and_per_class_agree_with_accuracy(quick_result):
    r = quick_result
    C = len(r.confusion_classes)
    assert r.confusion.shape == (C, C) and int(r.confusion.sum()) == N
    assert (r.confusion.sum(1) == N // C).all()  # every class shown N / C times
    assert r.accuracy["ood_flipped"] == pytest.approx(float(r.confusion.diag().sum()) / N, abs=1e-4)
    # the mean of per-class accuracies equals the accuracy when classes are balanced
    assert sum(r.per_class.values()) / len(r.per_class) == pytest.approx(r.accuracy["heldout"], abs=1e-3)
    assert r.confusion_rows()[0]["true"] == r.confusion_classes[0]


def test_numbers_match_the_eval_module(quick_result, tiny_random, world):
    ref = zero_shot_accuracy(tiny_random, world, ["heldout", "ood_style"], n=N)
    for split, a in ref.items():
        assert quick_result.accuracy[split] == pytest.approx(a, abs=1e-4)


def test_cache_is_keyed_by_weights(tmp_path, tiny_random):
    cfg = study.Config(n_eval=10, splits=("heldout",))
    first = study.run(cfg, output_dir=tmp_path / "a", model=tiny_random)
    again = study.run(cfg, output_dir=tmp_path / "b", model=tiny_random)
    assert not first.cached and again.cached and again.accuracy == first.accuracy
    assert torch.equal(again.confusion, first.confusion)
    state = {k: v.clone() for k, v in tiny_random.state_dict().items()}
    try:
        with torch.no_grad():
            tiny_random.model.visual.proj.add_(0.01)
        changed = study.run(cfg, output_dir=tmp_path / "c", model=tiny_random)
        assert not changed.cached
    finally:
        tiny_random.load_state_dict(state)


def test_other_backends_and_resolutions(tmp_path, tiny_hf_config):
    hf = load_model(tiny_hf_config)  # 32 px: the world's 64 px images are resized
    r = study.run(study.Config(n_eval=10, splits=("heldout",)), output_dir=tmp_path, model=hf)
    assert 0.0 <= r.accuracy["heldout"] <= 1.0 and r.model_name.startswith("hf:")
    assert r.reference is None  # shipped tiny-world-clip numbers are shown only for the weights loaded by name


def test_findings_near_chance_and_far_from_it(tmp_path, world):
    cfg = study.Config(n_eval=100, splits=("heldout", "ood_flipped"))
    targets = torch.arange(100) % 10
    chance_preds = {s: (torch.zeros(100, dtype=torch.long), targets) for s in cfg.splits}
    r = study._summarise(cfg, "m", world, chance_preds, tmp_path)
    assert "has not learned the world" in r.findings
    wrong = targets.clone()
    wrong[:40] = (wrong[:40] + 1) % 10  # ood_flipped: 60% right, heldout perfect
    r = study._summarise(cfg, "m", world, {"heldout": (targets, targets), "ood_flipped": (wrong, targets)},
                         tmp_path)
    assert r.accuracy == {"heldout": 1.0, "ood_flipped": 0.6}
    assert "40.0 points below heldout" in r.findings and "has not learned" not in r.findings


def test_reference_numbers_only_for_the_shipped_tiny_model(tmp_path, monkeypatch):
    (tmp_path / "metrics.json").write_text(json.dumps({"zero_shot_accuracy": {"heldout": 0.9}}))
    (tmp_path / "recipe.json").write_text(json.dumps({"eval_n": 2000}))
    monkeypatch.setattr(study, "TINY_DIR", tmp_path)
    assert study.tiny_reference(study.Config()) == ({"heldout": 0.9}, 2000)
    other = tmp_path / "other.safetensors"  # other weights (the Config checks that they exist)
    other.write_bytes(b"")
    assert study.tiny_reference(study.Config(pretrained=str(other))) == (None, None)
    assert study.tiny_reference(study.Config(model="ViT-B-32")) == (None, None)
    assert study.tiny_reference(study.Config(world_seed=1)) == (None, None)


def test_config_checks_and_quick_preset():
    assert study.Config.preset(quick=True).n_eval == study.QUICK_N_EVAL
    assert study.Config.preset(quick=True, n_eval=50).n_eval == 50  # quick caps, never raises
    assert study.Config.preset(quick=False).n_eval == 1000
    with pytest.raises(ValueError, match="ood_flip"):
        study.Config(splits=("heldout", "ood_flip"))
    with pytest.raises(ValueError, match="one string"):
        study.Config(splits="heldout")
    with pytest.raises(ValueError, match="n_eval"):
        study.Config(n_eval=0)


def test_figures_draw_and_reject_bad_input(world, quick_result):
    r = quick_result
    figs = [viz.sample_grid(world, ("heldout", "novel_test"), n=2), viz.class_and_context_gallery(world),
            viz.clip_strip(world, indices=(0,), frames=3),
            viz.sounds_figure(world, classes=("circle",), contexts=("sand", "space")),
            viz.accuracy_bars(r.accuracy, r.chance, {"heldout": 0.5}), viz.per_class_bars(r.per_class, 0.1),
            viz.confusion_figure(r.confusion, r.confusion_classes)]
    assert all(len(f.axes) >= 1 for f in figs)
    for f in figs:
        plt.close(f)
    with pytest.raises(ValueError, match="ood_flip"):
        viz.sample_grid(world, ("ood_flip",))
    with pytest.raises(ValueError, match="pentagon"):
        viz.sounds_figure(world, classes=("pentagon",))  # heldout never shows novel classes
    with pytest.raises(ValueError, match="do not fit"):
        viz.confusion_figure(r.confusion, r.confusion_classes[:3])
    table = viz.markdown_table(r.table)
    assert table.count("\n") == len(r.table) + 1 and "ood_style" in table


def test_browser_follows_its_controls(world):
    box = viz.browser(world, splits=("heldout", "ood_style"), max_index=20)
    (split, index), mask, (image, info) = box.children[0].children, box.children[1], box.children[2].children
    first = image.value
    index.value = 5
    assert image.value != first and "heldout[5]" in info.value
    split.value = "ood_style"
    assert "sketch" in info.value
    shown = image.value
    mask.value = "none"
    assert image.value != shown
    assert World.classes[int(world.batch("ood_style", [5]).labels[0])] in info.value
