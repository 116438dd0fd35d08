"""Study 01 (cam_counterfactual): config errors, the world path end to end, caching, the scale path."""
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from workbench.eval import evaluate
from workbench.studies import cam_counterfactual as study

METHODS = ("full_ft", "wise_ft", "mask_fd", "mask_fd_cached")
SMALL = dict(methods=METHODS, seeds=(0, 1), steps=2, batch_size=8, n_train=16, n_eval=20,
             wise_alphas=(0.0, 0.5, 1.0), cam_method="gradcam", lr=1e-3)


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.mark.parametrize("kwargs,match", [
    ({"threshold": 0.0}, "threshold=0.0"), ({"threshold": 1.2}, "threshold=1.2"),
    ({"mask_kind": "blob"}, "'blob'.*object, context, random"), ({"fill": "black"}, "'black'.*constant"),
    ({"cam_method": "ScoreCAM"}, "'ScoreCAM'.*gradcam, rollout"),
    ({"methods": ("full_ft", "sgd")}, "'sgd'.*accepted: zero_shot, linear_probe"),
    ({"methods": "full_ft"}, "sequence"), ({"seeds": ()}, "must not be empty"), ({"batch_size": 1}, "batch_size=1"),
    ({"wise_alpha": 2.0}, "alphas are in"), ({"train_dir": "/x"}, "id_test_dir"),
    ({"train_dir": "/x", "id_test_dir": "/y", "ood_dirs": "/z"}, "dict name -> folder"),
])
def test_bad_config_names_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        study.Config(**kwargs)


def test_presets_and_normalisation():
    q = study.Config.preset(quick=True)
    assert q.seeds == (0,) and q.claim_seeds == () and q.steps < study.Config().steps
    assert set(study.STUDY.method_ids(q)) == set(study.METHODS)
    assert study.Config.preset(quick=True, steps=9).steps == 9
    c = study.Config(wise_alphas=(0.3,), wise_alpha=0.6, train_dir="/a", id_test_dir="/b", ood_dirs=["/c/sketch"])
    assert c.wise_alphas == (0.0, 0.3, 0.6, 1.0) and c.ood_dirs == {"sketch": "/c/sketch"} and not c.uses_world


@pytest.fixture(scope="module")
def world_result(tmp_path_factory, tiny_random):
    cfg = study.Config(**SMALL)
    return study.run(cfg, output_dir=tmp_path_factory.mktemp("out"), progress=False, model=tiny_random)


def test_world_path_end_to_end(world_result):
    r = world_result
    assert [row["method"] for row in r.table] == ["zero_shot", *METHODS]
    assert r.splits == ("id_test", "ood_flipped", "ood_unseen", "ood_style")
    for row in r.table:
        assert all(0.0 <= row[s] <= 1.0 for s in (*r.splits, "ood_avg"))
        assert row["ood_avg"] == pytest.approx(np.mean([row[s] for s in r.splits[1:]]))
    # WiSE-FT: alpha 0 is zero-shot, alpha 1 is FT, and the table's row is the curve at 0.5
    zs, ft, wise = (next(x for x in r.table if x["method"] == m) for m in ("zero_shot", "full_ft", "wise_ft"))
    assert r.wise_curve[0]["alpha"] == 0.0 and r.wise_curve[0]["id_test"] == pytest.approx(zs["id_test"])
    assert r.wise_curve[-1]["id_test"] == pytest.approx(ft["id_test"])
    assert next(c for c in r.wise_curve if c["alpha"] == 0.5)["ood_avg"] == pytest.approx(wise["ood_avg"])
    cost = {c["method"]: c for c in r.cost}
    assert cost["mask_fd_cached"]["one_off_seconds"] > 0 and cost["mask_fd"]["ratio_to_ft"] > 0  # timings: no order
    assert set(r.premise) >= {"holds", "zero_shot_id", "ft_id", "shift_split", "shift_verdict"}
    assert r.premise["shift_split"] == "ood_flipped"
    data = json.loads((r.output_dir / "result.json").read_text())
    assert data["study"] == "cam_counterfactual" and data["findings"] == r.findings
    assert set(data["tables"]) == {"results", "comparisons", "wise_ft_curve", "cost"} and "masked FD" in r.findings
    assert {(c["a"], c["b"]) for c in r.comparisons} >= {("mask_fd", "full_ft"), ("mask_fd", "zero_shot")}
    assert all(c["verdict"] in ("beyond noise", "within noise") for c in r.comparisons)
    assert {r_["method"] for r_ in data["rows"]} == {"zero_shot", *METHODS}
    # the kept FT weights give back the FT model of the first seed
    again = evaluate(r.load_classifier("full_ft"), r.data, r.config.n_eval)
    assert again["id_test"] == pytest.approx(r.cells["full_ft"][0]["id_test"])


def test_rerun_is_cached_and_any_knob_retrains(world_result, tiny_random, tmp_path):
    cfg = world_result.config
    again = study.run(cfg, output_dir=tmp_path / "again", progress=False, model=tiny_random)
    assert all(c["cached"] for per_seed in again.cells.values() for c in per_seed.values())
    assert again.table == world_result.table
    fewer = dataclasses.replace(cfg, methods=("full_ft", "mask_fd"), seeds=(1,), save_models=())
    fewer = study.run(fewer, output_dir=tmp_path / "f", progress=False, model=tiny_random)  # skip list: all cached
    assert all(c["cached"] for per_seed in fewer.cells.values() for c in per_seed.values())
    changed = study.run(dataclasses.replace(cfg, threshold=0.5, methods=("full_ft", "mask_fd"), seeds=(0,)),
                        output_dir=tmp_path / "t", progress=False, model=tiny_random)
    assert not any(c["cached"] for per_seed in changed.cells.values() for c in per_seed.values())


def _folder(root, classes, n, seed):
    rng = np.random.default_rng(seed)
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = (rng.random((40, 40, 3)) * 60 + 150 * k).clip(0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")


@pytest.mark.slow
def test_scale_path_vit_b32_on_imagefolders(tmp_path):
    for name, seed in (("train", 0), ("test", 1), ("ood_a", 2)):
        _folder(tmp_path / name, ["golden_retriever", "tabby_cat"], 4, seed)
    cfg = study.Config(model="ViT-B-32", methods=("mask_fd",), seeds=(0,), steps=1, batch_size=2, n_eval=2,
                       cam_method="gradcam", wise_alphas=(0.0, 1.0), save_models=(),
                       train_dir=str(tmp_path / "train"), id_test_dir=str(tmp_path / "test"),
                       ood_dirs={"ood_a": str(tmp_path / "ood_a")})
    r = study.run(cfg, output_dir=tmp_path / "out", progress=False)
    assert r.model_name == "ViT-B-32" and r.splits == ("id_test", "ood_a")
    assert r.data.classnames == ("golden retriever", "tabby cat") and r.data.image_size == 224
    assert [row["method"] for row in r.table] == ["zero_shot", "mask_fd"]
    assert all(0.0 <= row[s] <= 1.0 for row in r.table for s in ("id_test", "ood_a", "ood_avg"))
    assert "ood_a" in r.findings and r.premise == {"checked": False, "why": "full_ft was not run"}
    step = r.cells["mask_fd"][0]["history"][-1]
    assert step["step"] == 1 and 0.0 <= step["masked"] <= 1.0 and step["distill"] >= 0.0
