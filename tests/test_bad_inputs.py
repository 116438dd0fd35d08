"""No bad input gets through: every case is refused where it is passed, with an error that names the value.

One table for the Python API (world, engine, models, CAMs, adapters, corrupt files, study configs and
the study kit) and one for the CLI (`workbench.cli.main` returns / exits with 2). Every case is fast:
nothing trains, and models are copies of the seeded `tiny_random` fixture.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from workbench.engine import TrainConfig
from workbench.methods.baselines.peft_tuners import apply_loha, apply_lokr, apply_lora, apply_vera
from workbench.methods.cam import compute_cam, counterfactual, gradcam, library_cam, relevance_rollout
from workbench.methods.mode_approx import ModeApproxConfig, inject_mode_approx
from workbench.models import ImageClassifier, ZeroShotHead, check_towers, load_model, load_weights
from workbench.models.params import AdapterError
from workbench.studies import cam_counterfactual, cp_rank_ablation, kit, world_and_model
from workbench.world import WorldConfig

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "data" / "tiny-world-clip"
S = 64  # tiny-world-clip's image size


@pytest.fixture
def ctx(tiny_random, world, tmp_path):
    w = torch.randn(3, tiny_random.embed_dim, generator=torch.Generator().manual_seed(0))
    clf = ImageClassifier(tiny_random, ZeroShotHead(w, ("circle", "square", "triangle"), scale=100.0))
    images = torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(model=tiny_random, clf=clf, world=world, tmp=tmp_path, x=images)


def _full(value, dtype=torch.float32, size=S):
    return torch.full((2, 3, size, size), value, dtype=dtype)


# -- helpers that build the bad state a case needs --------------------------------------------
def _adapted(c, first):
    """A fresh copy of the tiny model carrying one adapter."""
    m = c.model.copy()
    first(m)
    return m


LORA = lambda m: apply_lora(m, r=2)
LOHA = lambda m: apply_loha(m, r=2)
LOKR = lambda m: apply_lokr(m, r=2)
VERA = lambda m: apply_vera(m, r=2)
MODES = lambda m: inject_mode_approx(m, ModeApproxConfig(rank=2))


def _tiny_dir(c, name="m", config=None, weights=None, drop=()):
    """A copy of data/tiny-world-clip under tmp with its config / weights replaced or removed."""
    d = c.tmp / name
    shutil.copytree(TINY, d)
    if config is not None:
        (d / "open_clip_config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    if weights is not None:
        (d / "open_clip_model.safetensors").write_bytes(weights)
    for f in drop:
        (d / f).unlink()
    return f"local-dir:{d}"


def _config_without(*path):
    cfg = json.loads((TINY / "open_clip_config.json").read_text())
    node = cfg
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return cfg


def _truncated_weights():
    data = (TINY / "open_clip_model.safetensors").read_bytes()
    return data[:len(data) // 2]


def _garbage_file(c, name):
    f = c.tmp / name
    f.write_bytes(b"\x00not a checkpoint" * 8)
    return str(f)


def _wrong_keys_file(c):
    from safetensors.torch import save_file

    f = c.tmp / "other.safetensors"
    save_file({"some.other.weight": torch.zeros(2, 2)}, str(f))
    return f


def _registry():
    reg = kit.Registry("toy")
    reg.register("a", "A")(lambda ctx, cell: {"v": 1})
    reg.register("b", "B", needs=("a",))(lambda ctx, cell: {"v": 2})
    return reg


API_CASES = [
    # ---- world: seeds, sizes, probabilities
    pytest.param(lambda c: WorldConfig(seed=1.5), TypeError, r"seed=1\.5", id="world-seed-float"),
    pytest.param(lambda c: WorldConfig(seed=True), TypeError, r"seed=True", id="world-seed-bool"),
    pytest.param(lambda c: WorldConfig(seed="0"), TypeError, r"seed='0'", id="world-seed-str"),
    pytest.param(lambda c: WorldConfig(seed=np.float32(2.0)), TypeError, r"seed=.*2\.0", id="world-seed-np-float"),
    pytest.param(lambda c: WorldConfig(image_size=64.0), TypeError, r"image_size=64\.0", id="world-size-float"),
    pytest.param(lambda c: WorldConfig(image_size=8), ValueError, r"image_size=8", id="world-size-small"),
    pytest.param(lambda c: WorldConfig(p_tie=1.5), ValueError, r"p_tie=1\.5", id="world-p-tie"),
    pytest.param(lambda c: WorldConfig(sketch_share=-0.1), ValueError, r"sketch_share=-0\.1", id="world-sketch"),
    pytest.param(lambda c: WorldConfig(backdrop_contrast=2.0), ValueError, r"backdrop_contrast=2\.0",
                 id="world-contrast"),
    # ---- world: indices
    pytest.param(lambda c: c.world.batch("pretrain", [0, 1.5]), TypeError, r"index 1\.5 \(float\)",
                 id="indices-float-in-list"),
    pytest.param(lambda c: c.world.batch("pretrain", 3), TypeError, r"indices=3 is a single value",
                 id="indices-scalar"),
    pytest.param(lambda c: c.world.batch("pretrain", 2.0), TypeError, r"indices=2\.0", id="indices-float-scalar"),
    pytest.param(lambda c: c.world.batch("pretrain", torch.tensor([0.0, 1.0])), TypeError, r"torch\.float32",
                 id="indices-float-tensor"),
    pytest.param(lambda c: c.world.batch("pretrain", torch.tensor([True])), TypeError, r"torch\.bool",
                 id="indices-bool-tensor"),
    pytest.param(lambda c: c.world.latents("pretrain", np.array([0.5])), TypeError, r"float64.*0\.5",
                 id="indices-float-array"),
    pytest.param(lambda c: c.world.latents("pretrain", [True, False]), TypeError, r"index True \(bool\)",
                 id="indices-bools"),
    pytest.param(lambda c: c.world.latents("pretrain", [[0, 1]]), TypeError, r"index \[0, 1\]",
                 id="indices-nested"),
    pytest.param(lambda c: c.world.latents("pretrain", "ab"), TypeError, r"indices='ab'", id="indices-str"),
    pytest.param(lambda c: c.world.batch("pretrain", [3, -1]), ValueError, r">= 0, got -1", id="indices-negative"),
    pytest.param(lambda c: c.world.sounds("pretrain", [0.5]), TypeError, r"index 0\.5", id="sounds-float-index"),
    pytest.param(lambda c: c.world.clips("pretrain", [0], frames=1), ValueError, r"frames=1", id="clips-frames"),
    pytest.param(lambda c: c.world.batch("nope", [0]), KeyError, r"'nope'", id="world-split"),
    # ---- engine
    pytest.param(lambda c: TrainConfig(warmup=1.5), ValueError, r"warmup=1\.5", id="train-warmup"),
    pytest.param(lambda c: TrainConfig(mixed_precision="fp8"), ValueError, r"mixed_precision='fp8'",
                 id="train-precision"),
    pytest.param(lambda c: TrainConfig(steps=-1), ValueError, r"steps=-1", id="train-steps"),
    # ---- model images
    pytest.param(lambda c: c.model.encode_image(_full(128, torch.uint8)), TypeError, r"torch\.uint8.*\[0, 1\]",
                 id="image-uint8"),
    pytest.param(lambda c: c.model.encode_image(_full(3, torch.int64)), TypeError, r"torch\.int64",
                 id="image-int64"),
    pytest.param(lambda c: c.model.encode_image(_full(255.0)), ValueError, r"\[255, 255\].*divide them by 255",
                 id="image-0-255-float"),
    pytest.param(lambda c: c.model.encode_image(c.x * 1.5), ValueError, r"values in \[.*, 1\.4\d*\]; accepted",
                 id="image-above-one"),
    pytest.param(lambda c: c.model.encode_image(_full(-0.5)), ValueError, r"\[-0\.5, -0\.5\]",
                 id="image-negative"),
    pytest.param(lambda c: c.model.encode_image(_full(float("nan"))), ValueError, r"\[nan, nan\]", id="image-nan"),
    pytest.param(lambda c: c.model.encode_image(_full(0.5, size=32)), ValueError, r"32x32.*64x64", id="image-size"),
    pytest.param(lambda c: c.model.encode_image(torch.rand(3, S, S)), ValueError, r"\(3, 64, 64\)",
                 id="image-no-batch"),
    pytest.param(lambda c: c.model.encode_image(c.x.numpy()), TypeError, r"ndarray", id="image-numpy"),
    pytest.param(lambda c: c.model(_full(255.0), c.model.tokenize(["a circle"] * 2)), ValueError, r"\[255, 255\]",
                 id="model-forward-0-255"),
    pytest.param(lambda c: c.clf(_full(200, torch.uint8)), TypeError, r"torch\.uint8", id="classifier-uint8"),
    # ---- models: names and roles
    pytest.param(lambda c: load_model(123), TypeError, r"got int", id="load-model-int"),
    pytest.param(lambda c: load_model("ViT-Nope-99"), ValueError, r"'ViT-Nope-99'", id="load-model-unknown"),
    pytest.param(lambda c: load_model("ViT-B-32", pretrained="no_such_tag"), ValueError, r"'no_such_tag'",
                 id="load-model-tag"),
    pytest.param(lambda c: load_model(f"local-dir:{c.tmp / 'absent'}"), FileNotFoundError, r"absent",
                 id="load-dir-missing"),
    pytest.param(lambda c: c.model.adaptable_layers("ffn"), ValueError, r"'ffn'", id="layer-role"),
    pytest.param(lambda c: check_towers(("audio",)), ValueError, r"'audio'", id="towers"),
    # ---- CAMs
    pytest.param(lambda c: compute_cam(c.clf, _full(128, torch.uint8)), TypeError, r"torch\.uint8",
                 id="cam-uint8"),
    pytest.param(lambda c: compute_cam(c.clf, c.x * 255, method="rollout"), ValueError, r"divide them by 255",
                 id="cam-rollout-0-255"),
    pytest.param(lambda c: compute_cam(c.clf, _full(2.0), method="GradCAM"), ValueError, r"\[2, 2\]",
                 id="cam-library-range"),
    pytest.param(lambda c: gradcam(c.clf, _full(-1.0)), ValueError, r"\[-1, -1\]", id="gradcam-negative"),
    pytest.param(lambda c: relevance_rollout(c.clf, _full(0.5, size=32)), ValueError, r"32x32",
                 id="rollout-size"),
    pytest.param(lambda c: library_cam(c.clf, _full(9, torch.uint8)), TypeError, r"torch\.uint8",
                 id="library-cam-uint8"),
    pytest.param(lambda c: counterfactual(c.clf, c.x * 2, kind="random"), ValueError, r"values in \[.*\]; accepted",
                 id="counterfactual-random-range"),
    pytest.param(lambda c: counterfactual(c.clf, _full(7, torch.uint8)), TypeError, r"torch\.uint8",
                 id="counterfactual-uint8"),
    pytest.param(lambda c: compute_cam(c.clf, c.x, method="ScoreCAM2"), ValueError, r"'ScoreCAM2'",
                 id="cam-method"),
    pytest.param(lambda c: counterfactual(c.clf, c.x, kind="blob"), ValueError, r"'blob'", id="cf-kind"),
    pytest.param(lambda c: counterfactual(c.clf, c.x, fill="black"), ValueError, r"'black'", id="cf-fill"),
    pytest.param(lambda c: compute_cam(c.clf, c.x, [7, 0]), ValueError, r"target class 7", id="cam-target-range"),
    pytest.param(lambda c: compute_cam(c.clf, c.x, [0]), ValueError, r"targets has 1 entries", id="cam-targets-n"),
    pytest.param(lambda c: compute_cam(c.clf, c.x, "pentagon"), KeyError, r"pentagon", id="cam-target-name"),
    pytest.param(lambda c: compute_cam(torch.nn.Linear(2, 2), c.x), TypeError, r"got Linear", id="cam-not-clf"),
    # ---- a second adapter is refused
    pytest.param(lambda c: LORA(_adapted(c, LORA)), AdapterError, r"cannot apply LoRA.*peft lora layer",
                 id="lora-then-lora"),
    pytest.param(lambda c: MODES(_adapted(c, LORA)), AdapterError, r"cannot apply mode approximation.*peft lora",
                 id="lora-then-modes"),
    pytest.param(lambda c: LORA(_adapted(c, MODES)), AdapterError, r"cannot apply LoRA.*mode approximation",
                 id="modes-then-lora"),
    pytest.param(lambda c: MODES(_adapted(c, MODES)), RuntimeError, r"mode-approximation adapters are already",
                 id="modes-then-modes"),
    pytest.param(lambda c: LOKR(_adapted(c, MODES)), ValueError, r"cannot apply LoKr.*mode approximation",
                 id="modes-then-lokr"),
    pytest.param(lambda c: LORA(_adapted(c, LOHA)), ValueError, r"cannot apply LoRA.*peft loha layer",
                 id="loha-then-lora"),
    pytest.param(lambda c: VERA(_adapted(c, LOKR)), ValueError, r"cannot apply VeRA.*peft lokr layer",
                 id="lokr-then-vera"),
    pytest.param(lambda c: LOHA(_adapted(c, VERA)), ValueError, r"cannot apply LoHa.*peft vera layer",
                 id="vera-then-loha"),
    pytest.param(lambda c: MODES(_adapted(c, VERA)), ValueError, r"cannot apply mode approximation.*vera",
                 id="vera-then-modes"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=0), ValueError, r"r=0", id="lora-rank-0"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2.5), ValueError, r"r=2\.5", id="lora-rank-float"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, targets=("nope",)), ValueError, r"'nope'",
                 id="lora-targets"),
    pytest.param(lambda c: ModeApproxConfig(rank=0), ValueError, r"rank=0", id="modes-rank"),
    pytest.param(lambda c: ModeApproxConfig(form="tt"), ValueError, r"form='tt'", id="modes-form"),
    # ---- corrupt config and weight files name the file and what is wrong
    pytest.param(lambda c: load_model(_tiny_dir(c, config="{bad")), ValueError,
                 r"open_clip_config\.json is not valid JSON", id="config-bad-json"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config="[1, 2]")), ValueError,
                 r"open_clip_config\.json holds a JSON list", id="config-json-list"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config={"x": 1})), ValueError,
                 r"open_clip_config\.json has no 'model_cfg'.*keys: x", id="config-no-model-cfg"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_config_without("model_cfg", "vision_cfg"))), ValueError,
                 r"open_clip_config\.json: model_cfg lacks 'vision_cfg'", id="config-no-vision-cfg"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_config_without("model_cfg", "text_cfg",
                                                                          "context_length"))),
                 ValueError, r"text_cfg lacks 'context_length'", id="config-no-context-length"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=b"\xff\xfe\x00".decode("latin-1"))), ValueError,
                 r"open_clip_config\.json", id="config-binary"),
    pytest.param(lambda c: load_model(_tiny_dir(c, weights=_truncated_weights())), ValueError,
                 r"open_clip_model\.safetensors is corrupt", id="weights-truncated"),
    pytest.param(lambda c: load_model(_tiny_dir(c, drop=("open_clip_model.safetensors",))), FileNotFoundError,
                 r"no \*\.safetensors weights in .*m", id="weights-missing"),
    pytest.param(lambda c: load_model(_tiny_dir(c, drop=("open_clip_config.json",))), FileNotFoundError,
                 r"no open_clip_config\.json in", id="config-missing"),
    pytest.param(lambda c: load_model("tiny-world-clip", pretrained=_garbage_file(c, "w.safetensors")), ValueError,
                 r"checkpoint .*w\.safetensors is corrupt", id="pretrained-corrupt-safetensors"),
    pytest.param(lambda c: load_weights(c.model.model, c.tmp / "none.safetensors"), FileNotFoundError,
                 r"none\.safetensors does not exist", id="weights-file-missing"),
    pytest.param(lambda c: load_weights(c.model.model, _wrong_keys_file(c)), ValueError,
                 r"other\.safetensors does not fit the model", id="weights-wrong-keys"),
    pytest.param(lambda c: load_model("ViT-B-32", pretrained=_garbage_file(c, "vit.pt")), ValueError,
                 r"checkpoint .*vit\.pt is corrupt or not a ViT-B-32 weights file", id="pretrained-corrupt-pt"),
    # ---- study configs
    pytest.param(lambda c: cam_counterfactual.Config(threshold=1.2), ValueError, r"threshold=1\.2",
                 id="cam-study-threshold"),
    pytest.param(lambda c: cam_counterfactual.Config(mask_kind="blob"), ValueError, r"'blob'",
                 id="cam-study-mask-kind"),
    pytest.param(lambda c: cam_counterfactual.Config(fill="black"), ValueError, r"'black'", id="cam-study-fill"),
    pytest.param(lambda c: cam_counterfactual.Config(cam_method="ScoreCAM"), ValueError, r"'ScoreCAM'",
                 id="cam-study-method"),
    pytest.param(lambda c: cam_counterfactual.Config(methods=("full_ft", "sgd")), ValueError, r"'sgd'",
                 id="cam-study-methods"),
    pytest.param(lambda c: cam_counterfactual.Config(methods="full_ft"), ValueError, r"methods='full_ft'",
                 id="cam-study-methods-str"),
    pytest.param(lambda c: cam_counterfactual.Config(batch_size=1), ValueError, r"batch_size=1",
                 id="cam-study-batch"),
    pytest.param(lambda c: cp_rank_ablation.Config(methods=("dora",)), ValueError, r"'dora'",
                 id="cp-study-methods"),
    pytest.param(lambda c: cp_rank_ablation.Config(ranks=(0, 2)), ValueError, r"ranks=\(0, 2\)",
                 id="cp-study-ranks"),
    pytest.param(lambda c: cp_rank_ablation.Config(ranks=8), ValueError, r"ranks=8", id="cp-study-ranks-int"),
    pytest.param(lambda c: cp_rank_ablation.Config(real_scale="all"), ValueError, r"real_scale='all'",
                 id="cp-study-real-scale"),
    pytest.param(lambda c: world_and_model.Config(splits=("heldout", "ood_flip")), ValueError, r"ood_flip",
                 id="world-study-split"),
    pytest.param(lambda c: world_and_model.Config(splits="heldout"), ValueError, r"heldout",
                 id="world-study-splits-str"),
    pytest.param(lambda c: world_and_model.Config(n_eval=0), ValueError, r"n_eval=0", id="world-study-n-eval"),
    # ---- study kit
    pytest.param(lambda c: _registry().check(("a", "c")), ValueError, r"unknown 'c'; accepted: a, b",
                 id="kit-registry-unknown"),
    pytest.param(lambda c: _registry().check("a"), ValueError, r"'a'.*sequence", id="kit-registry-str"),
    pytest.param(lambda c: _registry().register("a", "again")(lambda ctx, cell: {}), ValueError,
                 r"'a' is registered twice",
                 id="kit-registry-twice"),
    pytest.param(lambda c: _registry().register("d", "D", needs=("zz",))(lambda ctx, cell: {}), ValueError, r"zz",
                 id="kit-registry-needs"),
    pytest.param(lambda c: _registry()["x"], KeyError, r"'x'; accepted: a, b", id="kit-registry-getitem"),
    pytest.param(lambda c: kit.device("gpu0"), ValueError, r"device='gpu0'", id="kit-device"),
    pytest.param(lambda c: cp_rank_ablation.Config.preset(stepz=3), TypeError, r"stepz", id="kit-preset-field"),
    pytest.param(lambda c: kit.config_key(cp_rank_ablation.Config(), ("nope",)), ValueError, r"nope",
                 id="kit-config-key-skip"),
]


@pytest.mark.parametrize("call,exc,match", API_CASES)
def test_bad_api_input_is_refused_and_named(ctx, call, exc, match):
    with pytest.raises(exc, match=match):
        call(ctx)


NB = ["--notebooks-dir", str(REPO / "notebooks")]

CLI_CASES = [
    pytest.param(["run", "99", *NB], r"no such notebook: '99'", id="cli-run-unknown-number"),
    pytest.param(["run", "zz_nope", *NB], r"no such notebook: 'zz_nope'", id="cli-run-unknown-name"),
    pytest.param(["run", "00", *NB, "-p", "seed", "abc"], r"-p seed 'abc'.*expects int", id="cli-param-type"),
    pytest.param(["run", "00", *NB, "-p", "nope", "1"], r"unknown parameter 'nope'", id="cli-param-unknown"),
    pytest.param(["run", "00", *NB, "-p", "quick", "1"], r"'quick' cannot be overridden", id="cli-param-quick"),
    pytest.param(["run", "00", *NB, "--against", "{tmp}/nope"], r"--against .*nope: not a folder",
                 id="cli-run-against"),
    pytest.param(["compare", "{tmp}/nope_a", "{tmp}/nope_b"], r"nope_a is not a folder", id="cli-compare-missing"),
    pytest.param(["compare", "{tmp}", "{tmp}/nope_b"], r"nope_b is not a folder", id="cli-compare-missing-b"),
    pytest.param(["compare", "{tmp}", "{tmp}", "--rtol", "-1"], r"--rtol -1\.0 must be >= 0", id="cli-compare-rtol"),
    pytest.param(["pretrain", "--steps", "0", "--out", "{tmp}/pre"], r"--steps must be >= 1, got 0",
                 id="cli-pretrain-steps-0"),
    pytest.param(["pretrain", "--steps", "-3", "--out", "{tmp}/pre"], r"got -3", id="cli-pretrain-steps-neg"),
    pytest.param(["pretrain", "--steps", "x"], r"invalid int value: 'x'", id="cli-pretrain-steps-str"),
    pytest.param(["pretrain", "--seed", "1.5"], r"invalid int value: '1\.5'", id="cli-pretrain-seed-float"),
    pytest.param(["pretrain", "--out", str(TINY)], r"already holds a model", id="cli-pretrain-existing"),
    pytest.param(["frobnicate"], r"invalid choice: 'frobnicate'", id="cli-unknown-command"),
]


@pytest.mark.parametrize("argv,match", CLI_CASES)
def test_bad_cli_input_exits_2_and_names_it(argv, match, tmp_path, capsys, monkeypatch):
    import re

    from workbench.cli import main

    monkeypatch.chdir(tmp_path)  # nothing may land in the repository (runs/)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert re.search(match, err), err


def test_the_table_is_big_enough():
    assert len(API_CASES) + len(CLI_CASES) >= 60


def test_valid_images_pass_unchanged(tiny_random):
    """The pixel check reads the images and changes nothing: the edges 0 and 1 pass, outputs are the same."""
    x = torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(1))
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0
    before = x.clone()
    with torch.no_grad():
        a = tiny_random.encode_image(x)
        b = tiny_random._encode_pixels(tiny_random.normalize_pixels(before))
    assert torch.equal(x, before) and torch.equal(a, b)
    tiny_random.check_images(torch.clamp(x + 5e-7, max=1 + 5e-7))  # rounding slack from resizing passes
