"""No bad input gets through: every case is refused where it is passed, with an error that names the value.

One table for the Python API (world, engine, models, CAMs, adapters, corrupt files, study configs and
the study kit; then, by area, the engine's numeric knobs, workbench.checks, method configs, model
folders and images, zero-shot prompts, crafted files, eval functions, event features and compare) and
one for the CLI (`workbench.cli.main` returns / exits with 2). Every case is fast: nothing trains for
more than two steps, and models are copies of the seeded `tiny_random` fixture. Folders and disks (runs
folders, WORKBENCH_CACHE, writes that run out of room) have their area too; their CLI cases are in
tests/test_bad_cli_inputs.py.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.disks import file_size_limit
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


# ================================================================================================
# Issue 26: numeric knobs, eval functions, method configs, model folders, compare, crafted files.
# Every refusal of a Config field is a workbench.checks BadValue / BadType (both ValueErrors; BadType
# also a TypeError) naming `Class.field=value` and what is accepted.
# ================================================================================================
NAN, INF = float("nan"), float("inf")


class _Crafted:
    """Pickles to a call (harmless here): a loader that unpickled it would run code."""

    def __reduce__(self):
        import os

        return (os.getcwd, ())


def _crafted_file(c, name="evil.pt"):
    f = c.tmp / name
    torch.save({"weights": torch.zeros(2), "payload": _Crafted()}, f)
    return f


def _no_cuda(call):
    """Run `call` as on a machine without CUDA (the H100 test machine has one)."""
    from unittest import mock

    with mock.patch("torch.cuda.is_available", return_value=False), \
            mock.patch("torch.cuda.device_count", return_value=0):
        return call()


class _NanObjective(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))

    def forward(self, x):
        return (self.w * x).sum() * float("nan")


def _train_nan(c, steps=2):
    from workbench.engine import train

    return train(_NanObjective(), lambda step: {"x": torch.ones(2)},
                 TrainConfig(steps=steps, lr=1e-2, log_every=100), progress=False)


def _param_groups(**kw):
    from workbench.engine import param_groups

    return param_groups([("w", torch.nn.Parameter(torch.ones(2, 2)))], **kw)


def _tiny_cfg(**edits):
    """tiny-world-clip's open_clip_config.json with dotted keys set ("preprocess_cfg.std": [...])."""
    cfg = json.loads((TINY / "open_clip_config.json").read_text())
    for path, value in edits.items():
        node = cfg
        *parents, leaf = path.split(".")
        for k in parents:
            node = node[k]
        node[leaf] = value
    return cfg


def _nan_weights():
    from safetensors.torch import load_file, save

    state = load_file(str(TINY / "open_clip_model.safetensors"))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    return save(state)


def _photo(c, x):
    from workbench.models import PhotoClassifier

    return PhotoClassifier(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Flatten()), ("a", "b"))(x)


def _hf_dir(c, preprocessor: str) -> str:
    """A small random HF CLIP saved to a folder with the given preprocessor_config.json text."""
    from transformers import CLIPConfig

    from workbench.models import HFClipModel

    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    cfg = CLIPConfig(text_config=dict(small, max_position_embeddings=24, vocab_size=49408),
                     vision_config=dict(small, image_size=32, patch_size=8), projection_dim=16)
    d = c.tmp / "hf"
    HFClipModel.from_config(cfg).model.save_pretrained(d)
    (d / "preprocessor_config.json").write_text(preprocessor)
    return f"hf:{d}"


def _backend(c, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
    from workbench.models import OpenClipModel

    return OpenClipModel(c.model.model, "t", c.model.tokenizer, mean, std)


def _feats(**over):
    """A small EventFeatures (4 sequences of 3 steps, 5-d video and audio), with fields replaced."""
    from workbench.data import EventFeatures

    g = torch.Generator().manual_seed(0)
    kw = dict(features={"video": torch.randn(4, 3, 5, generator=g), "audio": torch.randn(4, 3, 5, generator=g)},
              step_labels=torch.tensor([[0, 1, 2]] * 4), labels=torch.tensor([0, 1, 0, 1]),
              present={"video": torch.ones(4, 3, dtype=torch.bool), "audio": torch.ones(4, 3, dtype=torch.bool)},
              classes=("dog", "bell"))
    kw.update(over)
    return EventFeatures(**kw)


def _with_nan(x, value=float("nan")):
    x = x.clone()
    x.view(-1)[1] = value
    return x


def _npy(c, array, name="v.npy", allow_pickle=False):
    f = c.tmp / name
    np.save(f, array, allow_pickle=allow_pickle)
    return f


def _paper(c, video):
    from workbench.data import load_paper_features

    a = _npy(c, np.zeros((2, 3, 4), dtype=np.float32), "a.npy")
    y = _npy(c, np.eye(3)[[[0, 1, 2]] * 2].astype(np.float32), "y.npy")
    return load_paper_features(video=video, audio=a, labels=y)


def _unicode(c, **kw):
    from workbench.methods.codebook import CodebookConfig, UniCode, train_unicode

    model = UniCode(CodebookConfig(dim=8, codes=4, heads=2, specific_dim=8, club=False, cpc=False, layers=1),
                    {"video": (5,), "audio": (5,)})
    data = kw.pop("data", None) or _feats()
    return train_unicode(model, data, **{"steps": 1, "batch_size": 2, **kw})


def _runs(c, a_text, b_text=None, stem="01_x"):
    """compare() over two run folders whose <stem>/result.json hold the given texts."""
    from workbench import compare

    for name, text in (("A", a_text), ("B", a_text if b_text is None else b_text)):
        (c.tmp / name / stem).mkdir(parents=True, exist_ok=True)
        f = c.tmp / name / stem / "result.json"
        f.write_bytes(text) if isinstance(text, bytes) else f.write_text(text)
    return compare.compare(c.tmp / "A", c.tmp / "B")


def _vs_reference(c, ref_text, stem="01_x"):
    from workbench import compare

    (c.tmp / "ref").mkdir(exist_ok=True)
    (c.tmp / "ref" / f"{stem}.json").write_text(ref_text)
    (c.tmp / "B" / stem).mkdir(parents=True, exist_ok=True)
    (c.tmp / "B" / stem / "result.json").write_text(json.dumps({"rows": []}))
    return compare.compare(c.tmp / "ref", c.tmp / "B")


ROW = {"method": "m", "setting": 1, "seed": 0, "acc": 0.5}


def _lazy(name):
    """An attribute of a workbench module, imported when a case runs (keeps collection fast)."""
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


CB = lambda **kw: _lazy("workbench.methods.codebook.CodebookConfig")(**kw)
MOD = lambda **kw: _lazy("workbench.methods.modular.config.ModularConfig")(**kw)
HEAD = lambda **kw: _lazy("workbench.methods.codebook.HeadConfig")(**kw)
FT = lambda **kw: _lazy("workbench.methods.robust_ft.methods.FineTuneConfig")(**kw)
MASK = lambda **kw: _lazy("workbench.methods.robust_ft.masking.MaskSpec")(**kw)
PRE = lambda **kw: _lazy("workbench.pretrain.PretrainConfig")(**kw)
E = lambda name: _lazy(f"workbench.eval.{name}")
GAP = lambda name: _lazy(f"workbench.eval.modality_gap.{name}")
RET = lambda name: _lazy(f"workbench.eval.retrieval.{name}")
CHK = lambda name: _lazy(f"workbench.checks.{name}")
A4 = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
B4 = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
MASKS = torch.zeros(2, 8, 8, dtype=torch.bool)

ENGINE_CASES = [
    pytest.param(lambda c: TrainConfig(lr=-1), ValueError, r"TrainConfig\.lr=-1; accepted: a finite number > 0",
                 id="train-lr-negative"),
    pytest.param(lambda c: TrainConfig(lr=0), ValueError, r"lr=0; accepted", id="train-lr-zero"),
    pytest.param(lambda c: TrainConfig(lr=INF), ValueError, r"lr=inf \(not finite\)", id="train-lr-inf"),
    pytest.param(lambda c: TrainConfig(lr=NAN), ValueError, r"lr=nan \(not finite\)", id="train-lr-nan"),
    pytest.param(lambda c: TrainConfig(lr="1e-3"), TypeError, r"lr='1e-3'", id="train-lr-str"),
    pytest.param(lambda c: TrainConfig(lr=True), TypeError, r"lr=True", id="train-lr-bool"),
    pytest.param(lambda c: TrainConfig(weight_decay=-0.1), ValueError, r"weight_decay=-0\.1; accepted: .* >= 0",
                 id="train-wd-negative"),
    pytest.param(lambda c: TrainConfig(weight_decay=NAN), ValueError, r"weight_decay=nan", id="train-wd-nan"),
    pytest.param(lambda c: TrainConfig(grad_clip=-1), ValueError, r"grad_clip=-1; accepted: None or .* > 0",
                 id="train-clip-negative"),
    pytest.param(lambda c: TrainConfig(grad_clip=0), ValueError, r"grad_clip=0;.*None disables clipping",
                 id="train-clip-zero"),
    pytest.param(lambda c: TrainConfig(grad_clip=INF), ValueError, r"grad_clip=inf", id="train-clip-inf"),
    pytest.param(lambda c: TrainConfig(betas=(0.9, 1.0)), ValueError, r"betas=\(0\.9, 1\.0\).*\[0, 1\)",
                 id="train-betas-one"),
    pytest.param(lambda c: TrainConfig(betas=(0.9,)), ValueError, r"betas=\(0\.9,\) \(1 item", id="train-betas-len"),
    pytest.param(lambda c: TrainConfig(betas=(-0.1, 0.9)), ValueError, r"betas=\(-0\.1, 0\.9\) \(item -0\.1",
                 id="train-betas-negative"),
    pytest.param(lambda c: TrainConfig(betas="0.9"), TypeError, r"betas='0\.9'", id="train-betas-str"),
    pytest.param(lambda c: TrainConfig(steps=2.5), TypeError, r"steps=2\.5; accepted: an integer",
                 id="train-steps-float"),
    pytest.param(lambda c: TrainConfig(steps=True), TypeError, r"steps=True", id="train-steps-bool"),
    pytest.param(lambda c: TrainConfig(seed=-1), ValueError, r"seed=-1", id="train-seed-negative"),
    pytest.param(lambda c: TrainConfig(log_every=0), ValueError, r"log_every=0; accepted: an integer >= 1",
                 id="train-log-every"),
    pytest.param(lambda c: TrainConfig(checkpoint_every=-5), ValueError, r"checkpoint_every=-5",
                 id="train-ckpt-every"),
    pytest.param(lambda c: TrainConfig(warmup=NAN), ValueError, r"warmup=nan", id="train-warmup-nan"),
    pytest.param(lambda c: TrainConfig(channels_last="False"), TypeError,
                 r"channels_last='False'; accepted: True or False",
                 id="train-channels-last-str"),
    pytest.param(lambda c: TrainConfig(fused_adamw="yes"), TypeError, r"fused_adamw='yes'", id="train-fused-str"),
    pytest.param(lambda c: TrainConfig(compile=1), TypeError, r"compile=1", id="train-compile-int"),
    pytest.param(lambda c: TrainConfig(input_checks="sometimes"), ValueError, r"input_checks='sometimes'",
                 id="train-input-checks"),
    pytest.param(lambda c: TrainConfig(mixed_precision=16), TypeError, r"mixed_precision=16", id="train-precision-int"),
    pytest.param(lambda c: _param_groups(weight_decay=-1.0), ValueError, r"weight_decay=-1\.0",
                 id="param-groups-wd"),
    pytest.param(lambda c: _param_groups(weight_decay=0.1, lr=-1e-3), ValueError, r"lr=-0\.001",
                 id="param-groups-lr"),
    pytest.param(lambda c: _param_groups(weight_decay=0.1, lr=NAN), ValueError, r"lr=nan", id="param-groups-lr-nan"),
    pytest.param(lambda c: _train_nan(c), FloatingPointError, r"diverged, the loss was nan at step 1 of 2",
                 id="train-nan-loss"),
]

CHECK_CASES = [
    pytest.param(lambda c: CHK("check_device")("gpu"), ValueError, r"device='gpu'.*accepted here: 'cpu'",
                 id="device-gpu"),
    pytest.param(lambda c: _no_cuda(lambda: CHK("check_device")("cuda:0")), ValueError,
                 r"device='cuda:0' but this machine has no CUDA GPU", id="device-cuda-without-cuda"),
    pytest.param(lambda c: CHK("check_device")("cuda:99"), ValueError, r"device='cuda:99'", id="device-cuda-99"),
    pytest.param(lambda c: CHK("check_device")(0.5), TypeError, r"device=0\.5 is a float", id="device-float"),
    pytest.param(lambda c: CHK("check_device")("tpu"), ValueError, r"device='tpu'", id="device-tpu"),
    pytest.param(lambda c: load_model("tiny-world-clip", device="gpu"), ValueError, r"device='gpu'",
                 id="load-model-device-gpu"),
    pytest.param(lambda c: _no_cuda(lambda: load_model("tiny-world-clip", device="cuda:0")), ValueError,
                 r"device='cuda:0' but this machine has no CUDA", id="load-model-device-no-cuda"),
    pytest.param(lambda c: _lazy("workbench.models.load_efficientnet_lite0")(device="gpu"), ValueError,
                 r"device='gpu'", id="efficientnet-device"),
    pytest.param(lambda c: _feats().to("gpu"), ValueError, r"device='gpu'", id="event-features-device"),
    pytest.param(lambda c: E("centre_prior")(2, 8, device="gpu0"), ValueError, r"device='gpu0'",
                 id="centre-prior-device"),
    pytest.param(lambda c: _lazy("workbench.methods.mode_approx.counting.open_clip_architecture")(device="cuda:x"),
                 ValueError, r"device='cuda:x'", id="counting-device"),
    pytest.param(lambda c: CHK("check_number")(NAN, "lam"), ValueError, r"lam=nan \(not finite\)", id="number-nan"),
    pytest.param(lambda c: CHK("check_number")(2.5, "n", integer=True, ge=1), TypeError,
                 r"n=2\.5; accepted: an integer",
                 id="number-int"),
    pytest.param(lambda c: CHK("check_value")(TrainConfig, "lr", "fast"), TypeError, r"TrainConfig\.lr='fast'",
                 id="check-value-type"),
    pytest.param(lambda c: CHK("check_value")(TrainConfig, "stepz", 3), KeyError, r"no field 'stepz'.*steps, lr",
                 id="check-value-field"),
]

CONFIG_CASES = [
    # ---- mode approximation
    pytest.param(lambda c: ModeApproxConfig(train=""), ValueError, r"train=\(''.*blank.*would match every",
                 id="modes-train-empty"),
    pytest.param(lambda c: ModeApproxConfig(train=("  ",)), ValueError, r"train=\('  ',\)", id="modes-train-blank"),
    pytest.param(lambda c: ModeApproxConfig(train=("head", "head")), ValueError, r"'head' repeats",
                 id="modes-train-repeat"),
    pytest.param(lambda c: ModeApproxConfig(train=(3,)), TypeError, r"train=\(3,\) \(item 3\)", id="modes-train-int"),
    pytest.param(lambda c: ModeApproxConfig(rank=True), TypeError, r"rank=True", id="modes-rank-bool"),
    pytest.param(lambda c: ModeApproxConfig(rank="8"), TypeError, r"rank='8'", id="modes-rank-str"),
    pytest.param(lambda c: ModeApproxConfig(targets=()), ValueError, r"targets=\(\) \(empty\)",
                 id="modes-targets-empty"),
    pytest.param(lambda c: ModeApproxConfig(targets=("attn", "attn")), ValueError, r"'attn' repeats",
                 id="modes-targets-repeat"),
    pytest.param(lambda c: ModeApproxConfig(towers=("vision", "vision")), ValueError, r"'vision' repeats",
                 id="modes-towers-repeat"),
    pytest.param(lambda c: ModeApproxConfig(towers=()), ValueError, r"towers=\(\)", id="modes-towers-empty"),
    pytest.param(lambda c: ModeApproxConfig(dropout=NAN), ValueError, r"dropout=nan", id="modes-dropout-nan"),
    pytest.param(lambda c: ModeApproxConfig(share="False"), TypeError, r"share='False'; accepted: True or False",
                 id="modes-share-str"),
    pytest.param(lambda c: ModeApproxConfig(gated="True"), TypeError, r"gated='True'", id="modes-gated-str"),
    pytest.param(lambda c: ModeApproxConfig(context=1), TypeError, r"context=1", id="modes-context-int"),
    pytest.param(lambda c: ModeApproxConfig(scale=INF), ValueError, r"scale=inf", id="modes-scale-inf"),
    pytest.param(lambda c: ModeApproxConfig(seed=-2), ValueError, r"seed=-2", id="modes-seed"),
    pytest.param(lambda c: inject_mode_approx(c.model.copy(), ModeApproxConfig(rank=256)), ValueError,
                 r"rank=256 is larger than the hidden width 128.*accepted: rank <= 128", id="modes-rank-above-width"),
    pytest.param(lambda c: inject_mode_approx(c.model.copy(), ModeApproxConfig(rank=129, towers=("text",))),
                 ValueError, r"rank=129 .* width 128 of the text tower", id="modes-rank-above-text-width"),
    # ---- codebook: bools are bools, numbers finite and in range, fsq takes its codes from its levels
    pytest.param(lambda c: CB(mm_ema="False"), TypeError, r"CodebookConfig\.mm_ema='False'; accepted: True or False",
                 id="codebook-mm-ema-str"),
    pytest.param(lambda c: CB(reset=1), TypeError, r"reset=1", id="codebook-reset-int"),
    pytest.param(lambda c: CB(club="yes"), TypeError, r"club='yes'", id="codebook-club-str"),
    pytest.param(lambda c: CB(cpc=None), TypeError, r"cpc=None", id="codebook-cpc-none"),
    pytest.param(lambda c: CB(recon="no"), TypeError, r"recon='no'", id="codebook-recon-str"),
    pytest.param(lambda c: CB(masked_infonce=0), TypeError, r"masked_infonce=0", id="codebook-infonce-int"),
    pytest.param(lambda c: CB(cross_commit="True"), TypeError, r"cross_commit='True'", id="codebook-commit-str"),
    pytest.param(lambda c: CB(quantizer="fsq", codes=1024), ValueError,
                 r"codes=1024 with quantizer='fsq'.*\(5, 5, 4, 4\) \(400\).*ignored", id="codebook-fsq-codes"),
    pytest.param(lambda c: CB(quantizer="fsq", codes=64), ValueError, r"codes=64 with quantizer='fsq'.*\(8, 5, 5, 5\)",
                 id="codebook-fsq-codes-small"),
    pytest.param(lambda c: CB(decay=NAN), ValueError, r"decay=nan", id="codebook-decay-nan"),
    pytest.param(lambda c: CB(decay=1.0), ValueError, r"decay=1\.0; accepted: a finite number in \[0, 1\)",
                 id="codebook-decay-one"),
    pytest.param(lambda c: CB(commitment=-1.0), ValueError, r"commitment=-1\.0", id="codebook-commitment"),
    pytest.param(lambda c: CB(commitment=INF), ValueError, r"commitment=inf", id="codebook-commitment-inf"),
    pytest.param(lambda c: CB(eps=0.0), ValueError, r"eps=0\.0; accepted: a finite number > 0", id="codebook-eps"),
    pytest.param(lambda c: CB(temperature=NAN), ValueError, r"temperature=nan", id="codebook-temperature"),
    pytest.param(lambda c: CB(club_lr=0), ValueError, r"club_lr=0", id="codebook-club-lr"),
    pytest.param(lambda c: CB(codes=1), ValueError, r"codes=1; accepted: an integer >= 2", id="codebook-codes-one"),
    pytest.param(lambda c: CB(codes=2.5), TypeError, r"codes=2\.5", id="codebook-codes-float"),
    pytest.param(lambda c: CB(dim=100, heads=3), ValueError, r"dim=100 is not divisible by heads=3",
                 id="codebook-dim-heads"),
    pytest.param(lambda c: CB(fsq_levels=()), ValueError, r"fsq_levels=\(\) \(empty\)", id="codebook-fsq-empty"),
    pytest.param(lambda c: CB(fsq_levels="554"), TypeError, r"fsq_levels='554'", id="codebook-fsq-str"),
    pytest.param(lambda c: CB(quantizer="FSQ"), ValueError, r"quantizer='FSQ'; accepted: one of",
                 id="codebook-quantizer-case"),
    pytest.param(lambda c: CB(mask_ratio=1.5), ValueError, r"mask_ratio=1\.5", id="codebook-mask-ratio"),
    pytest.param(lambda c: CB(cross_weight=NAN), ValueError, r"cross_weight=nan", id="codebook-cross-weight-nan"),
    pytest.param(lambda c: CB(reset_noise=-1e-3), ValueError, r"reset_noise=-0\.001", id="codebook-reset-noise"),
    pytest.param(lambda c: CB(heads=0), ValueError, r"heads=0", id="codebook-heads"),
    pytest.param(lambda c: CB(layers=True), TypeError, r"layers=True", id="codebook-layers-bool"),
    # ---- modular
    pytest.param(lambda c: MOD(shared_layers="most"), ValueError, r"shared_layers='most'.*'all'", id="modular-k-str"),
    pytest.param(lambda c: MOD(shared_layers=2.0), TypeError, r"shared_layers=2\.0", id="modular-k-float"),
    pytest.param(lambda c: MOD(shared_layers=True), TypeError, r"shared_layers=True", id="modular-k-bool"),
    pytest.param(lambda c: MOD(temporal="yes"), TypeError, r"temporal='yes'", id="modular-temporal-str"),
    pytest.param(lambda c: MOD(routing="tokens"), ValueError, r"routing='tokens'; accepted: one of path, token",
                 id="modular-routing"),
    pytest.param(lambda c: MOD(vocab=(1, -2)), ValueError, r"vocab=\(1, -2\) \(item -2\)", id="modular-vocab-negative"),
    pytest.param(lambda c: MOD(vocab="abc"), TypeError, r"vocab='abc'", id="modular-vocab-str"),
    pytest.param(lambda c: MOD(vocab=()), ValueError, r"vocab=\(\) \(empty\)", id="modular-vocab-empty"),
    pytest.param(lambda c: MOD(latents=0), ValueError, r"latents=0", id="modular-latents"),
    pytest.param(lambda c: MOD(classes=0), ValueError, r"classes=0", id="modular-classes"),
    pytest.param(lambda c: MOD(answers=2.5), TypeError, r"answers=2\.5", id="modular-answers-float"),
    pytest.param(lambda c: MOD(fusion_layers=-1), ValueError, r"fusion_layers=-1", id="modular-fusion"),
    pytest.param(lambda c: MOD(seed=-1), ValueError, r"seed=-1", id="modular-seed"),
    # ---- codebook heads, robust fine-tuning, pretraining
    pytest.param(lambda c: HEAD(lr=NAN), ValueError, r"HeadConfig\.lr=nan", id="head-lr-nan"),
    pytest.param(lambda c: HEAD(steps=0), ValueError, r"HeadConfig\.steps=0", id="head-steps"),
    pytest.param(lambda c: HEAD(batch_size=2.5), TypeError, r"batch_size=2\.5", id="head-batch-float"),
    pytest.param(lambda c: FT(lr=-1e-4), ValueError, r"FineTuneConfig\.lr=-0\.0001", id="ft-lr"),
    pytest.param(lambda c: FT(weight_decay=-1), ValueError, r"weight_decay=-1", id="ft-wd"),
    pytest.param(lambda c: FT(grad_clip=-1), ValueError, r"grad_clip=-1", id="ft-clip"),
    pytest.param(lambda c: FT(w=NAN), ValueError, r"FineTuneConfig\.w=nan", id="ft-w-nan"),
    pytest.param(lambda c: FT(distill_fraction=1.5), ValueError, r"distill_fraction=1\.5", id="ft-fraction"),
    pytest.param(lambda c: FT(mask="object"), TypeError, r"mask='object'; accepted: MaskSpec", id="ft-mask-str"),
    pytest.param(lambda c: FT(log_every=0), ValueError, r"log_every=0", id="ft-log-every"),
    pytest.param(lambda c: MASK(kind="blob"), ValueError, r"MaskSpec\.kind='blob'", id="maskspec-kind"),
    pytest.param(lambda c: MASK(threshold=1.0), ValueError, r"threshold=1\.0; accepted: .* in \(0, 1\)",
                 id="maskspec-threshold"),
    pytest.param(lambda c: MASK(p=NAN), ValueError, r"MaskSpec\.p=nan", id="maskspec-p-nan"),
    pytest.param(lambda c: MASK(cam_method="scorecam"), ValueError, r"cam_method='scorecam'", id="maskspec-cam"),
    pytest.param(lambda c: MASK(fill="black"), ValueError, r"fill='black'", id="maskspec-fill"),
    pytest.param(lambda c: PRE(lr=0.0), ValueError, r"PretrainConfig\.lr=0\.0", id="pretrain-lr"),
    pytest.param(lambda c: PRE(batch_size=0), ValueError, r"batch_size=0", id="pretrain-batch"),
    pytest.param(lambda c: PRE(warmup=1.0), ValueError, r"warmup=1\.0", id="pretrain-warmup"),
    pytest.param(lambda c: PRE(seed=1.5), TypeError, r"seed=1\.5", id="pretrain-seed-float"),
    # ---- peft tuners: a rank above the matrix, knobs
    pytest.param(lambda c: apply_lora(c.model.copy(), r=256), ValueError, r"LoRA r=256 is larger than .*attn.*"
                 r"smaller side 128", id="lora-rank-above-width"),
    pytest.param(lambda c: apply_loha(c.model.copy(), r=1000), ValueError, r"LoHa r=1000.*smaller side 128",
                 id="loha-rank-above-width"),
    pytest.param(lambda c: apply_vera(c.model.copy(), r=1000), ValueError, r"VeRA r=1000", id="vera-rank-above"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, alpha=NAN), ValueError, r"alpha=nan", id="lora-alpha-nan"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, alpha=0), ValueError, r"alpha=0", id="lora-alpha-zero"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, dropout=1.0), ValueError, r"dropout=1\.0",
                 id="lora-dropout"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, targets=("attn", "attn")), ValueError,
                 r"targets=\('attn', 'attn'\)", id="lora-targets-repeat"),
    pytest.param(lambda c: apply_vera(c.model.copy(), r=2, projection_seed=-1), ValueError, r"projection_seed=-1",
                 id="vera-seed"),
    pytest.param(lambda c: apply_loha(c.model.copy(), r=True), ValueError, r"r=True", id="loha-rank-bool"),
]

MODEL_CASES = [
    # ---- folders: preprocessing, shapes, non-finite weights
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"preprocess_cfg.std": [0, 0.25, 0.25]}))),
                 ValueError, r"open_clip_config\.json: preprocess_cfg std=\[0, 0\.25, 0\.25\]; accepted: .* > 0",
                 id="folder-std-zero"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"preprocess_cfg.std": [-0.25, 0.25, 0.25]}))),
                 ValueError, r"std=\[-0\.25, 0\.25, 0\.25\]", id="folder-std-negative"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"preprocess_cfg.std": [NAN, 0.25, 0.25]}))),
                 ValueError, r"std=\[nan, 0\.25, 0\.25\]", id="folder-std-nan"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"preprocess_cfg.mean": [0.5, 0.5]}))),
                 ValueError, r"mean=\[0\.5, 0\.5\]; accepted: 3 finite numbers", id="folder-mean-two"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"preprocess_cfg.std": "0.25"}))),
                 ValueError, r"std='0\.25'", id="folder-std-str"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(preprocess_cfg=[1, 2]))), ValueError,
                 r"preprocess_cfg is a JSON list", id="folder-preprocess-list"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"model_cfg.vision_cfg.width": 64}))),
                 ValueError, r"does not fit the model described in .*m: .* the first 'visual\.[a-z_.0-9]+' is "
                 r"\(.*\) in the file but", id="folder-shape-mismatch-width"),
    pytest.param(lambda c: load_model(_tiny_dir(c, config=_tiny_cfg(**{"model_cfg.embed_dim": 64}))),
                 ValueError, r"tensors differ in shape, the first '[a-z_.]+' is \(\d+(, \d+)?\) in the file",
                 id="folder-shape-mismatch-embed"),
    pytest.param(lambda c: load_model(_tiny_dir(c, weights=_nan_weights())), ValueError,
                 r"open_clip_model\.safetensors holds non-finite weights: tensor '.*' holds 1 non-finite values.*nan",
                 id="folder-nan-weights"),
    pytest.param(lambda c: load_model(_hf_dir(c, json.dumps({"image_mean": [0.5] * 3, "image_std": [0.2, 0.0, 0.2]}))),
                 ValueError, r"preprocessor_config\.json: image_std=\[0\.2, 0\.0, 0\.2\]", id="hf-std-zero"),
    pytest.param(lambda c: load_model(_hf_dir(c, '{"image_mean": [0.5, 0.5')), ValueError,
                 r"preprocessor_config\.json is not valid JSON", id="hf-preprocessor-truncated"),
    pytest.param(lambda c: _backend(c, std=(0.0, 1.0, 1.0)), ValueError, r"pixel std=\(0\.0, 1\.0, 1\.0\)",
                 id="backend-std-zero"),
    pytest.param(lambda c: _backend(c, mean=(NAN, 0.5, 0.5)), ValueError, r"pixel mean=\(nan, 0\.5, 0\.5\)",
                 id="backend-mean-nan"),
    # ---- image batches: dtype, emptiness
    pytest.param(lambda c: c.model.encode_image(c.x.double()), TypeError,
                 r"images have dtype torch\.float64 but the weights of .* are torch\.float32", id="image-float64"),
    pytest.param(lambda c: c.model.encode_image(c.x.half()), TypeError, r"torch\.float16", id="image-float16"),
    pytest.param(lambda c: c.model.encode_image(c.x.bfloat16()), TypeError, r"torch\.bfloat16", id="image-bfloat16"),
    pytest.param(lambda c: c.model.encode_image(c.x[:0]), ValueError, r"no image \(shape \(0, 3, 64, 64\)\)",
                 id="image-empty"),
    pytest.param(lambda c: c.clf(c.x.double()), TypeError, r"torch\.float64", id="classifier-float64"),
    pytest.param(lambda c: compute_cam(c.clf, c.x.half()), TypeError, r"torch\.float16", id="cam-float16"),
    pytest.param(lambda c: _photo(c, torch.rand(0, 3, 224, 224)), ValueError, r"got shape \(0, 3, 224, 224\)",
                 id="photo-empty"),
    pytest.param(lambda c: _photo(c, torch.rand(1, 3, 224, 224).double()), TypeError, r"torch\.float64",
                 id="photo-float64"),
    pytest.param(lambda c: _photo(c, torch.full((1, 3, 224, 224), 255.0)), ValueError, r"\[255, 255\]",
                 id="photo-0-255"),
    # ---- zero-shot heads: templates, class names, weights
    pytest.param(lambda c: c.model.zero_shot_head(["circle", "square"], ["a photo"]), ValueError,
                 r"templates\[0\]='a photo' has 0 placeholders.*exactly one \{\}", id="zs-template-no-braces"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle"], ["a {} and a {}"]), ValueError,
                 r"'a \{\} and a \{\}' has 2 placeholders", id="zs-template-two"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle"], ["a photo of a {name}"]), ValueError,
                 r"\{name\}", id="zs-template-named"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle"], ["a photo of a {"]), ValueError,
                 r"'a photo of a \{' is not a format string", id="zs-template-broken"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle"], [3]), TypeError, r"templates\[0\]=3 is a int",
                 id="zs-template-int"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle", "circle"], ["a {}"]), ValueError, r"'circle' repeats",
                 id="zs-classnames-repeat"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle", ""], ["a {}"]), ValueError, r"'' is not a name",
                 id="zs-classnames-empty-name"),
    pytest.param(lambda c: _lazy("workbench.models.ZeroShotHead")(_with_nan(torch.ones(2, 4)), ("a", "b")),
                 ValueError, r"weight holds 1 non-finite values", id="zs-weight-nan"),
    pytest.param(lambda c: _lazy("workbench.models.ZeroShotHead")(torch.ones(3, 4), ("a", "b")), ValueError,
                 r"weight has shape \(3, 4\) for 2 classnames", id="zs-weight-rows"),
    pytest.param(lambda c: _lazy("workbench.models.ZeroShotHead")(torch.ones(2, 4), ("a", "b"), scale=0.0),
                 ValueError, r"scale=0\.0", id="zs-scale-zero"),
    pytest.param(lambda c: _lazy("workbench.models.ZeroShotHead")(torch.ones(2, 4), ("a", "b"), scale=NAN),
                 ValueError, r"scale=nan", id="zs-scale-nan"),
    # ---- crafted files: our message, never torch's advice to load unsafely
    pytest.param(lambda c: load_model("ViT-B-32", pretrained=str(_crafted_file(c))), ValueError,
                 r"evil\.pt is corrupt or not a ViT-B-32 weights file \(it holds objects other than tensors",
                 id="crafted-open-clip-pt"),
    pytest.param(lambda c: CHK("safe_torch_load")(_crafted_file(c)), ValueError,
                 r"evil\.pt holds objects other than tensors and plain values", id="crafted-safe-load"),
    pytest.param(lambda c: _lazy("workbench.methods.robust_ft.cam_cache.TeacherCams").load(_crafted_file(c)),
                 ValueError, r"teacher-CAM cache .*evil\.pt holds objects", id="crafted-teacher-cams"),
    pytest.param(lambda c: _lazy("workbench.data.EventFeatures").load(_crafted_file(c)), ValueError,
                 r"event-feature file .*evil\.pt holds objects", id="crafted-event-features"),
    pytest.param(lambda c: _paper(c, _crafted_file(c, "v.pt")), ValueError, r"video feature file .*v\.pt holds objects",
                 id="crafted-paper-pt"),
    pytest.param(lambda c: _paper(c, _npy(c, np.array([{"a": 1}], dtype=object), allow_pickle=True)), ValueError,
                 r"v\.npy' is corrupt .*Python objects, which are never unpickled", id="crafted-paper-npy"),
    pytest.param(lambda c: _paper(c, _garbage_file(c, "v.npy")), ValueError, r"v\.npy' is corrupt",
                 id="corrupt-paper-npy"),
    pytest.param(lambda c: CHK("safe_torch_load")(_garbage_file(c, "junk.pt")), ValueError,
                 r"junk\.pt is corrupt or not a torch file", id="corrupt-safe-load"),
    pytest.param(lambda c: CHK("safe_torch_load")(c.tmp / "absent.pt"), FileNotFoundError, r"absent\.pt does not exist",
                 id="missing-safe-load"),
]

EVAL_CASES = [
    pytest.param(lambda c: E("top1")(torch.tensor([0, 1, 2, 0]), torch.tensor([0])), ValueError,
                 r"preds have shape \(4,\) and targets \(1,\)", id="top1-4-vs-1"),
    pytest.param(lambda c: E("top1")(torch.tensor([0, 1]), torch.tensor([[0, 1]])), ValueError,
                 r"targets \(1, 2\)", id="top1-targets-2d"),
    pytest.param(lambda c: E("top1")(torch.randn(2, 3), torch.tensor([0, 1])), TypeError,
                 r"preds have dtype torch\.float32.*argmax", id="top1-logits"),
    pytest.param(lambda c: E("top1")(torch.tensor([True]), torch.tensor([1])), TypeError, r"torch\.bool",
                 id="top1-bool"),
    pytest.param(lambda c: E("top1")([0, 1], torch.tensor([0, 1])), TypeError,
                 r"preds must be a torch\.Tensor of class indices, got list",
                 id="top1-list"),
    pytest.param(lambda c: E("top1")(torch.tensor([0, 1]), torch.tensor([0.0, 1.0])), TypeError,
                 r"targets have dtype torch\.float32", id="top1-float-targets"),
    pytest.param(lambda c: E("classify_features")(_with_nan(A4), B4[:3]), ValueError,
                 r"image_feats holds 1 non-finite values", id="classify-nan"),
    pytest.param(lambda c: E("classify_features")(A4, torch.randn(3, 5)), ValueError,
                 r"\(4, 8\) and class_weights \(3, 5\)",
                 id="classify-dims"),
    pytest.param(lambda c: E("localization_scores")(torch.full((2, 4, 4), NAN), MASKS), ValueError,
                 r"cam holds 32 non-finite values.*nan", id="pointing-nan-cam"),
    pytest.param(lambda c: E("localization_scores")(_with_nan(torch.rand(2, 4, 4), INF), MASKS), ValueError,
                 r"cam holds 1 non-finite values of 32 \(first: inf", id="pointing-inf-cam"),
    pytest.param(lambda c: E("localization_scores")(torch.rand(2, 4, 4), MASKS, threshold=NAN), ValueError,
                 r"threshold=nan", id="pointing-threshold-nan"),
    pytest.param(lambda c: E("localization_scores")(torch.rand(2, 4, 4), MASKS.long() + 2), ValueError,
                 r"gt_masks hold values other than 0 and 1", id="pointing-masks-values"),
    pytest.param(lambda c: E("centre_prior")(2, 8, sigma=0.0), ValueError, r"sigma=0\.0", id="centre-sigma"),
    pytest.param(lambda c: E("centre_prior")(2, 0), ValueError, r"size=0", id="centre-size"),
    pytest.param(lambda c: E("localization_table")(c.clf, c.world, n=0, progress=False), ValueError, r"n=0",
                 id="loc-table-n"),
    pytest.param(lambda c: E("localization_table")(c.clf, c.world, methods="gradcam", progress=False), ValueError,
                 r"methods='gradcam' is one string", id="loc-table-methods-str"),
    pytest.param(lambda c: E("localization_table")(c.clf, c.world, methods=("gradcam", "gradcam"), progress=False),
                 ValueError, r"methods=\('gradcam', 'gradcam'\) repeat", id="loc-table-methods-repeat"),
    pytest.param(lambda c: RET("retrieval_from_features")(_with_nan(A4), B4), ValueError,
                 r"image_feats holds 1 non-finite", id="retrieval-nan"),
    pytest.param(lambda c: RET("retrieval_from_features")(A4[:0], B4[:0]), ValueError, r"no pair \(shape \(0, D\)\)",
                 id="retrieval-empty"),
    pytest.param(lambda c: RET("recall_at_k")(A4 @ B4.T, torch.eye(4, dtype=torch.bool), 0), ValueError, r"k=0",
                 id="recall-k-zero"),
    pytest.param(lambda c: RET("recall_at_k")(A4 @ B4.T, torch.eye(4, dtype=torch.bool), 1.5), TypeError, r"k=1\.5",
                 id="recall-k-float"),
    pytest.param(lambda c: RET("positives")("abcd", 4), TypeError, r"captions='abcd' is one string",
                 id="positives-str"),
    pytest.param(lambda c: RET("positives")(["a", 2], 2), TypeError, r"captions hold 2 \(int\)", id="positives-int"),
    pytest.param(lambda c: RET("evaluate_retrieval")(c.model, c.world, "heldout", n=0), ValueError, r"n=0",
                 id="retrieval-n-zero"),
    pytest.param(lambda c: RET("evaluate_retrieval")(c.model, c.world, "heldout", n=2.5), TypeError, r"n=2\.5",
                 id="retrieval-n-float"),
    pytest.param(lambda c: RET("encode_pairs")(c.model, c.x, "a circle"), TypeError, r"captions='a circle'",
                 id="encode-pairs-str"),
    pytest.param(lambda c: E("predict")(c.clf, c.world, "heldout", n=0), ValueError, r"n=0", id="predict-n"),
    pytest.param(lambda c: E("predict")(c.clf, c.world, "heldout", n=4, batch_size=0), ValueError, r"batch_size=0",
                 id="predict-batch"),
    pytest.param(lambda c: GAP("centroid_gap")(_with_nan(A4), B4), ValueError, r"a \(the first modality's "
                 r"embeddings\) holds 1 non-finite", id="gap-nan"),
    pytest.param(lambda c: GAP("relative_gap")(A4, _with_nan(B4, INF)), ValueError, r"holds 1 non-finite values of 32 "
                 r"\(first: inf", id="gap-inf"),
    pytest.param(lambda c: GAP("uniformity")(A4, t=NAN), ValueError, r"t=nan", id="uniformity-t"),
    pytest.param(lambda c: GAP("uniformity")(_with_nan(A4)), ValueError, r"x holds 1 non-finite", id="uniformity-nan"),
    pytest.param(lambda c: GAP("contrastive_loss")(A4, B4, NAN), ValueError, r"temperature=nan",
                 id="contrastive-temperature-nan"),
    pytest.param(lambda c: GAP("contrastive_loss")(A4, B4, 0), ValueError, r"temperature=0", id="contrastive-temp-0"),
    pytest.param(lambda c: GAP("contrastive_loss")(A4, B4, INF), ValueError, r"temperature=inf",
                 id="contrastive-temp-inf"),
    pytest.param(lambda c: GAP("shift")(A4, B4, NAN), ValueError, r"lam=nan", id="shift-lam-nan"),
    pytest.param(lambda c: GAP("shift_curve")(A4, B4, 0.5), TypeError, r"lambdas=0\.5 is one number",
                 id="shift-curve-number"),
    pytest.param(lambda c: GAP("shift_curve")(A4, B4, [0.0, INF]), ValueError, r"lambdas\[1\]=inf",
                 id="shift-curve-inf"),
    pytest.param(lambda c: GAP("shift_curve")(A4, B4, [0.0], temperature=-1), ValueError, r"temperature=-1",
                 id="shift-curve-temperature"),
    pytest.param(lambda c: GAP("shift_curve")(A4, B4, [0.0], class_text=B4[:2], labels=torch.tensor([0, 1, 2, 0])),
                 ValueError, r"labels hold values in \[0, 2\]; accepted: \[0, 1\]", id="shift-curve-labels"),
    pytest.param(lambda c: _lazy("workbench.eval.captioning.score_captions")("a red circle", ["x"], [{}]), TypeError,
                 r"predicted='a red circle'", id="captions-str"),
    pytest.param(lambda c: _lazy("workbench.eval.captioning.score_captions")([3], ["x"], [{}]), TypeError,
                 r"predicted holds 3 \(int\)", id="captions-int"),
]

DATA_CASES = [
    pytest.param(lambda c: _feats(features={"video": _with_nan(torch.zeros(4, 3, 5))}, present={
        "video": torch.ones(4, 3, dtype=torch.bool)}), ValueError, r"video features holds 1 non-finite values.*nan",
                 id="event-features-nan"),
    pytest.param(lambda c: _feats(features={"audio": torch.full((4, 3, 5), NAN)}, present={
        "audio": torch.ones(4, 3, dtype=torch.bool)}), ValueError, r"audio features holds 60 non-finite",
                 id="event-features-all-nan"),
    pytest.param(lambda c: _feats(features={"video": _with_nan(torch.zeros(4, 3, 5), -INF)}, present={
        "video": torch.ones(4, 3, dtype=torch.bool)}), ValueError, r"first: -inf", id="event-features-inf"),
    pytest.param(lambda c: _feats(classes=("dog", "dog")), ValueError, r"classes=\('dog', 'dog'\)",
                 id="event-features-classes-repeat"),
    pytest.param(lambda c: _unicode(c, data={"video": torch.full((4, 3, 5), NAN), "audio": torch.zeros(4, 3, 5)}),
                 ValueError, r"video features holds 60 non-finite", id="unicode-nan-dict"),
    pytest.param(lambda c: _unicode(c, lr=0.0), ValueError, r"lr=0\.0", id="unicode-lr"),
    pytest.param(lambda c: _unicode(c, steps=2.5), TypeError, r"steps=2\.5", id="unicode-steps-float"),
    pytest.param(lambda c: _unicode(c, batch_size=0), ValueError, r"batch_size=0", id="unicode-batch"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, n_train=2.5), TypeError, r"n_train=2\.5",
                 id="world-splits-n-train"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, batch_size=0), ValueError, r"batch_size=0",
                 id="world-splits-batch"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, ood="ood_flipped"), ValueError,
                 r"ood='ood_flipped' is one string", id="world-splits-ood-str"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, ood=("ood_style", "ood_style")), ValueError,
                 r"ood=\('ood_style', 'ood_style'\).*repeats", id="world-splits-ood-repeat"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, seed=-1), ValueError, r"seed=-1",
                 id="world-splits-seed"),
]

COMPARE_CASES = [
    pytest.param(lambda c: _runs(c, json.dumps({"rows": [ROW]})[:-5]), ValueError,
                 r"A/01_x/result\.json is not valid JSON .*truncated", id="compare-truncated"),
    pytest.param(lambda c: _runs(c, "[1, 2]"), ValueError, r"result\.json holds a JSON list", id="compare-list"),
    pytest.param(lambda c: _runs(c, json.dumps({"rows": {"a": 1}})), ValueError, r"'rows' is not a list .*dict",
                 id="compare-rows-dict"),
    pytest.param(lambda c: _runs(c, json.dumps({"rows": [{"setting": 1, "seed": 0}]})), ValueError,
                 r"rows\[0\] lacks 'method'", id="compare-row-no-method"),
    pytest.param(lambda c: _runs(c, json.dumps({"rows": [], "study": "world_and_model"})), ValueError,
                 r"a world_and_model result without 'metrics'", id="compare-world-no-metrics"),
    pytest.param(lambda c: _runs(c, json.dumps({"rows": [], "environment": "x86"})), ValueError,
                 r"'environment' is a JSON str", id="compare-environment-str"),
    pytest.param(lambda c: _runs(c, json.dumps({"rows": [ROW]}), b"\x00\xff\xfe"), ValueError,
                 r"B/01_x/result\.json is not a text file", id="compare-binary"),
    pytest.param(lambda c: _vs_reference(c, '{"cells": {'), ValueError, r"ref/01_x\.json is not valid JSON",
                 id="compare-reference-truncated"),
    pytest.param(lambda c: _vs_reference(c, json.dumps({"numbers": 1})), ValueError,
                 r"01_x\.json is not a reference file: no 'cells' and no 'study'", id="compare-reference-layout"),
    pytest.param(lambda c: _vs_reference(c, "3"), ValueError, r"01_x\.json holds a JSON int",
                 id="compare-reference-int"),
    pytest.param(lambda c: _lazy("workbench.compare.compare")(c.tmp, c.tmp, rtol=-1), ValueError, r"rtol=-1",
                 id="compare-rtol"),
    pytest.param(lambda c: _lazy("workbench.compare.compare")(c.tmp, c.tmp, atol=NAN), ValueError, r"atol=nan",
                 id="compare-atol-nan"),
    pytest.param(lambda c: _lazy("workbench.compare.compare")(c.tmp, c.tmp, notebooks="01_x"), ValueError,
                 r"notebooks='01_x' is one string", id="compare-notebooks-str"),
]



# -- folders and disks: a runs folder, the cell-cache root, writes that run out of room ------------------------
def _odd_paths(c):
    """c.tmp with `file` (a file), `loop` (a symlink to itself), `dangling` (a symlink to nothing), `empty/` (an
    empty folder) and `run/01_x/result.json` (a run folder)."""
    (c.tmp / "file").write_text("not a folder")
    for name, target in (("loop", "loop"), ("dangling", "nowhere")):
        if not (c.tmp / name).is_symlink():
            (c.tmp / name).symlink_to(target)
    (c.tmp / "empty").mkdir(exist_ok=True)
    (c.tmp / "run" / "01_x").mkdir(parents=True, exist_ok=True)
    (c.tmp / "run" / "01_x" / "result.json").write_text(json.dumps({"rows": [ROW]}))
    return c.tmp


def _new_run_dir(c, where):
    """new_run_dir at `where`: a name under c.tmp (see _odd_paths) or an absolute path (/sys, /proc)."""
    return _lazy("workbench.runner.new_run_dir")(_odd_paths(c) / where)


def _with_cache(c, value, call=lambda: kit.cache_root()):
    """call() with WORKBENCH_CACHE=value ({tmp}: the case's folder, see _odd_paths); the environment is restored."""
    from unittest import mock

    _odd_paths(c)
    with mock.patch.dict(os.environ, {kit.CACHE_ROOT_ENV: value.replace("{tmp}", str(c.tmp))}):
        return call()


BIG = "x" * 200_000  # past the 64 KiB limit of _out_of_room


def _out_of_room(c, write, name, old=None, limit=64 * 1024):
    """write(target) under a file-size limit, target = c.tmp/room/<name> (holding `old` first, if given); its
    error is re-raised after checking that target kept its old content (or was not made) and that no
    temporary file is left in the folder."""
    folder = c.tmp / "room"
    folder.mkdir(exist_ok=True)
    target = folder / name
    if old is not None:
        target.write_text(old)
    try:
        with file_size_limit(limit):
            write(target)
    except OSError:
        assert (target.read_text() == old) if old is not None else not target.exists()
        assert [p.name for p in folder.iterdir()] == ([name] if old is not None else []), list(folder.iterdir())
        raise


def _enospc_in_block(target):
    """Half a file into atomic_path's temporary file, then a full disk."""
    from workbench.checks import atomic_path

    with atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _summary(target):
    from workbench.runner import RunSummary, write_summary

    write_summary(RunSummary(target.parent, [], target, target.with_suffix(".html")))


def _papermill_out_of_room(c):
    """execute_notebook whose papermill writes half the executed notebook, then finds the disk full: the half
    copy is gone, the error names the notebook."""
    from unittest import mock

    from workbench.runner import execute_notebook

    def half_then_full(input_path, output_path, **kwargs):
        Path(output_path).write_text('{"cells": [')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = c.tmp / "run" / "00_x"
    try:
        with mock.patch("papermill.execute_notebook", half_then_full):
            execute_notebook(c.tmp / "00_x.ipynb", out, {}, cwd=c.tmp, progress=False)
    except OSError:
        assert list(out.iterdir()) == [], list(out.iterdir())
        raise


RUNS = r"runs folder \(--runs-dir\) "
CACHE = r"the cell cache \(WORKBENCH_CACHE\) "
CACHE_SAYS = r"accepted: a folder path, absolute or relative to the current folder, or WORKBENCH_CACHE unset"
FOLDER_SAYS = r"; accepted: a folder this user can write, or a path where one can be made$"

DISK_CASES = [
    pytest.param(lambda c: _new_run_dir(c, "file"), ValueError,
                 RUNS + r"/.*/file is a file, not a folder" + FOLDER_SAYS, id="runs-dir-file"),
    pytest.param(lambda c: _new_run_dir(c, "file/runs"), ValueError,
                 RUNS + r"/.*/file/runs cannot be a folder: a part of it is a file", id="runs-dir-under-file"),
    pytest.param(lambda c: _new_run_dir(c, "loop"), ValueError, RUNS + r"/.*/loop goes round a loop of symlinks",
                 id="runs-dir-symlink-loop"),
    pytest.param(lambda c: _new_run_dir(c, "loop/runs"), ValueError, RUNS + r"/.*/loop/runs goes round a loop",
                 id="runs-dir-under-symlink-loop"),
    pytest.param(lambda c: _new_run_dir(c, "dangling"), ValueError,
                 RUNS + r"/.*/dangling is a symlink to nowhere, which does not exist", id="runs-dir-dangling"),
    pytest.param(lambda c: _new_run_dir(c, "/sys"), ValueError, RUNS + r"/sys cannot be written: no file can be made",
                 id="runs-dir-read-only"),  # not even root may make a file in /sys (chmod does not stop root)
    pytest.param(lambda c: _new_run_dir(c, "/proc/workbench-runs"), ValueError,
                 RUNS + r"/proc/workbench-runs cannot be made", id="runs-dir-in-proc"),
    pytest.param(lambda c: _with_cache(c, ""), ValueError, r"WORKBENCH_CACHE='' is empty; " + CACHE_SAYS,
                 id="cache-root-empty"),
    pytest.param(lambda c: _with_cache(c, "  \t"), ValueError, r"WORKBENCH_CACHE='  \\t' is empty",
                 id="cache-root-blank"),
    pytest.param(lambda c: _with_cache(c, " {tmp}/cache"), ValueError, r"WORKBENCH_CACHE=' /.*/cache' starts or ends "
                 r"with a space", id="cache-root-space"),
    pytest.param(lambda c: _with_cache(c, "{tmp}/file"), ValueError, CACHE + r"/.*/file is a file, not a folder",
                 id="cache-root-file"),
    pytest.param(lambda c: _with_cache(c, "{tmp}/file/cache"), ValueError,
                 CACHE + r"/.*/file/cache cannot be a folder: a part of it is a file", id="cache-root-under-file"),
    pytest.param(lambda c: _with_cache(c, "{tmp}/loop"), ValueError, CACHE + r"/.*/loop goes round a loop",
                 id="cache-root-symlink-loop"),
    pytest.param(lambda c: _with_cache(c, "/proc/workbench-cache"), ValueError,
                 CACHE + r"/proc/workbench-cache cannot be made: no file can be made in /proc", id="cache-root-proc"),
    pytest.param(lambda c: _with_cache(c, "{tmp}/file", lambda: kit.cache_dir("toy")), ValueError,
                 CACHE + r"/.*/file is a file", id="cache-dir-file"),
    pytest.param(lambda c: _with_cache(c, "", lambda: kit.CellCache("toy", cp_rank_ablation.Config(), weights="w")),
                 ValueError, r"WORKBENCH_CACHE='' is empty", id="cell-cache-empty-root"),
    pytest.param(lambda c: _out_of_room(c, lambda t: _lazy("workbench.runner.write_text_atomic")(t, BIG), "s.md"),
                 OSError, r"^could not write /.*/room/s\.md: File too large; no partial file was left$",
                 id="full-disk-text"),
    pytest.param(lambda c: _out_of_room(c, lambda t: _lazy("workbench.runner.write_text_atomic")(t, BIG), "s.md",
                                        old="kept"), OSError,
                 r"room/s\.md: File too large; it keeps its previous content", id="full-disk-text-kept"),
    pytest.param(lambda c: _out_of_room(c, lambda t: kit.write_json_atomic(t, {"rows": [BIG]}), "result.json",
                                        old="{}"), OSError, r"could not write /.*/room/result\.json: File too large",
                 id="full-disk-result-json"),
    pytest.param(lambda c: _out_of_room(c, _summary, "summary.md", limit=100), OSError,
                 r"could not write /.*/room/summary\.md: File too large", id="full-disk-run-summary"),
    pytest.param(lambda c: _out_of_room(c, _enospc_in_block, "f.pt"), OSError,
                 r"could not write /.*/room/f\.pt: No space left on device; no partial file",
                 id="full-disk-atomic-path"),
    pytest.param(lambda c: _papermill_out_of_room(c), OSError,
                 r"could not write /.*/run/00_x/00_x\.ipynb: No space left on device; no partial file",
                 id="full-disk-executed-notebook"),
    pytest.param(lambda c: _lazy("workbench.compare.compare")(_odd_paths(c) / "empty", c.tmp / "run"),
                 FileNotFoundError, r"/empty is not a run folder: it holds no <notebook>/result\.json",
                 id="compare-empty-folder"),
    pytest.param(lambda c: _lazy("workbench.compare.compare")(_odd_paths(c) / "run" / "01_x", c.tmp / "run"),
                 FileNotFoundError, r"run/01_x is not a run folder", id="compare-notebook-folder"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_odd_paths(c) / "file"), ValueError,
                 r"/file is not a folder; give a run folder", id="claims-file"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_odd_paths(c) / "loop"), ValueError,
                 r"/loop is not a folder", id="claims-symlink-loop"),
]


# ================================================================================================
# Issue 26, the second probe: inputs no case above tried, at every public entry point. Study Configs
# (00-03) declare their ranges; models, engine, eval, codebook, adapters, world, viz and run files by area.
# ================================================================================================
def _study(name, **kw):
    return _lazy(f"workbench.studies.{name}.Config")(**kw)


S0 = lambda **kw: _study("world_and_model", **kw)
S1 = lambda **kw: _study("cam_counterfactual", **kw)
S2 = lambda **kw: _study("cp_rank_ablation", **kw)
S3 = lambda **kw: _study("codebook", **kw)
S4 = lambda **kw: _study("module_selection", **kw)
SPLIT_NAMES = r"accepted: one of pretrain, heldout, finetune"
NOT_DEVICE = r"is not a device name; accepted: None \(cuda if available, else cpu\), 'cpu', 'cuda'"

STUDY_CASES = [
    # ---- study 00
    pytest.param(lambda c: S0(seed=-1), ValueError, r"Config\.seed=-1; accepted: an integer >= 0", id="s0-seed"),
    pytest.param(lambda c: S0(world_seed=-2), ValueError, r"Config\.world_seed=-2", id="s0-world-seed"),
    pytest.param(lambda c: S0(batch_size=2.5), TypeError, r"Config\.batch_size=2\.5; accepted: an integer >= 1",
                 id="s0-batch-float"),
    pytest.param(lambda c: S0(n_eval="100"), TypeError, r"Config\.n_eval='100'", id="s0-n-eval-str"),
    pytest.param(lambda c: S0(device="gpu"), ValueError, r"Config\.device='gpu' " + NOT_DEVICE, id="s0-device"),
    pytest.param(lambda c: S0(splits=("heldout", "heldout")), ValueError, r"'heldout' repeats", id="s0-splits-repeat"),
    # ---- study 01
    pytest.param(lambda c: S1(weight_decay=-0.1), ValueError, r"Config\.weight_decay=-0\.1; accepted: .* >= 0",
                 id="s1-wd"),
    pytest.param(lambda c: S1(warmup=1.5), ValueError, r"Config\.warmup=1\.5; accepted: .* in \[0, 1\)",
                 id="s1-warmup"),
    pytest.param(lambda c: S1(p_random=-0.2), ValueError, r"p_random=-0\.2", id="s1-p-random"),
    pytest.param(lambda c: S1(wise_alphas=(0.5, NAN)), ValueError, r"wise_alphas=\(0\.5, nan\)", id="s1-wise-nan"),
    pytest.param(lambda c: S1(n_train=-5), ValueError, r"Config\.n_train=-5", id="s1-n-train"),
    pytest.param(lambda c: S1(n_train="5"), ValueError, r"n_train='5'", id="s1-n-train-str"),
    pytest.param(lambda c: S1(world_seed=-1), ValueError, r"Config\.world_seed=-1", id="s1-world-seed"),
    pytest.param(lambda c: S1(backdrop_contrast=1.5), ValueError, r"Config\.backdrop_contrast=1\.5",
                 id="s1-backdrop"),
    pytest.param(lambda c: S1(p_tie=2.0), ValueError, r"Config\.p_tie=2\.0; .*a probability", id="s1-p-tie"),
    pytest.param(lambda c: S1(device="tpu"), ValueError, r"Config\.device='tpu' " + NOT_DEVICE, id="s1-device"),
    pytest.param(lambda c: S1(save_models=("full_ft", "full_ft")), ValueError, r"'full_ft' repeats",
                 id="s1-save-models-repeat"),
    pytest.param(lambda c: S1(threshold="0.3"), ValueError, r"threshold='0\.3'", id="s1-threshold-str"),
    pytest.param(lambda c: S1(steps=True), ValueError, r"steps=True", id="s1-steps-bool"),
    pytest.param(lambda c: S1(w=INF), ValueError, r"w=inf", id="s1-w-inf"),
    pytest.param(lambda c: S1(lr=0.0), ValueError, r"Config\.lr=0\.0; accepted: a finite number > 0", id="s1-lr"),
    pytest.param(lambda c: S1(model=""), ValueError, r"Config\.model='' \(a blank string\)", id="s1-model-blank"),
    pytest.param(lambda c: S1(pretrained=" "), ValueError, r"Config\.pretrained=' '", id="s1-pretrained-blank"),
    pytest.param(lambda c: S1(model="nope"), ValueError, r"unknown model 'nope'; accepted: 'tiny-world-clip'",
                 id="s1-model-unknown"),
    pytest.param(lambda c: S1(pretrained=str(c.tmp / "w.pt")), FileNotFoundError,
                 r"pretrained='.*w\.pt' does not exist; accepted for tiny-world-clip", id="s1-pretrained-missing"),
    # ---- study 02
    pytest.param(lambda c: S2(lr=-1e-3), ValueError, r"Config\.lr=-0\.001; accepted: a finite number > 0",
                 id="s2-lr"),
    pytest.param(lambda c: S2(full_ft_lr=0.0), ValueError, r"Config\.full_ft_lr=0\.0", id="s2-full-ft-lr"),
    pytest.param(lambda c: S2(probe_lr=-1.0), ValueError, r"Config\.probe_lr=-1\.0", id="s2-probe-lr"),
    pytest.param(lambda c: S2(weight_decay=-0.05), ValueError, r"Config\.weight_decay=-0\.05", id="s2-wd"),
    pytest.param(lambda c: S2(warmup=2.0), ValueError, r"Config\.warmup=2\.0", id="s2-warmup"),
    pytest.param(lambda c: S2(dropout=1.5), ValueError, r"Config\.dropout=1\.5; accepted: .* in \[0, 1\)",
                 id="s2-dropout"),
    pytest.param(lambda c: S2(keep_rank=0), ValueError, r"Config\.keep_rank=0", id="s2-keep-rank"),
    pytest.param(lambda c: S2(model_seed=-1), ValueError, r"Config\.model_seed=-1", id="s2-model-seed"),
    pytest.param(lambda c: S2(world_seed=-3), ValueError, r"Config\.world_seed=-3", id="s2-world-seed"),
    pytest.param(lambda c: S2(train_split="train"), ValueError, r"Config\.train_split='train'; " + SPLIT_NAMES,
                 id="s2-train-split"),
    pytest.param(lambda c: S2(test_split="ood_nope"), ValueError, r"Config\.test_split='ood_nope'", id="s2-test-split"),
    pytest.param(lambda c: S2(heldout_split=""), ValueError, r"Config\.heldout_split=''", id="s2-heldout-split"),
    pytest.param(lambda c: S2(placement="Paper"), ValueError, r"Config\.placement='Paper'; accepted: one of all, paper",
                 id="s2-placement-case"),
    pytest.param(lambda c: S2(lora_rslora="yes"), ValueError, r"lora_rslora='yes'", id="s2-rslora-str"),
    pytest.param(lambda c: S2(real_scale=None), TypeError, r"Config\.real_scale=None; accepted: one of counted",
                 id="s2-real-scale-none"),
    pytest.param(lambda c: S2(ranks=(True, 2)), ValueError, r"ranks=\(True, 2\)", id="s2-ranks-bool"),
    pytest.param(lambda c: S2(eval_every=1.5), ValueError, r"eval_every=1\.5", id="s2-eval-every-float"),
    pytest.param(lambda c: S2(device="cpu:x"), ValueError, r"Config\.device='cpu:x' " + NOT_DEVICE, id="s2-device"),
    # ---- study 04
    pytest.param(lambda c: S4(n_probe=0), ValueError, r"Config\.n_probe=0; accepted: an integer >= 1", id="s4-n-probe"),
    pytest.param(lambda c: S4(model_seed=-1), ValueError, r"Config\.model_seed=-1", id="s4-model-seed"),
    pytest.param(lambda c: S4(shift_lambdas=(0.5, 0.5)), ValueError, r"0\.5 repeats", id="s4-lambdas-repeat"),
    pytest.param(lambda c: S4(test_split="pretrain"), ValueError, r"test_split='pretrain' is a split models train on",
                 id="s4-test-split-pretrain"),
    pytest.param(lambda c: S4(test_split="novel_train"), ValueError, r"test_split='novel_train' is a split",
                 id="s4-test-split-train"),
    pytest.param(lambda c: S4(task_weights=(1, 1, 4, 4)), ValueError, r"task_weights=\(1, 1, 4, 4\); accepted",
                 id="s4-task-weights-short"),
    # ---- study 03
    pytest.param(lambda c: S3(video="grid", grid=0), ValueError, r"Config\.grid=0; accepted: None or an integer >= 1",
                 id="s3-grid-zero"),
    pytest.param(lambda c: S3(video="grid", grid=-2), ValueError, r"Config\.grid=-2", id="s3-grid-negative"),
    pytest.param(lambda c: S3(video="grid", grid=2.0), ValueError, r"grid=2\.0", id="s3-grid-float"),
    pytest.param(lambda c: S3(reset_after=0), ValueError, r"Config\.reset_after=0", id="s3-reset-after"),
    pytest.param(lambda c: S3(encoder="lstm"), ValueError, r"Config\.encoder='lstm'; accepted: one of transformer, mlp",
                 id="s3-encoder"),
    pytest.param(lambda c: S3(dim=100, heads=3), ValueError, r"CodebookConfig\.dim=100 is not divisible by heads=3",
                 id="s3-dim-heads"),
    pytest.param(lambda c: S3(split="nope"), ValueError, r"Config\.split='nope'; " + SPLIT_NAMES, id="s3-split"),
    pytest.param(lambda c: S3(world_seed=-1), ValueError, r"Config\.world_seed=-1", id="s3-world-seed"),
    pytest.param(lambda c: S3(codes=1), ValueError, r"Config\.codes=1; accepted: an integer >= 2", id="s3-codes-one"),
    pytest.param(lambda c: S3(head_lr=INF), ValueError, r"head_lr=inf", id="s3-head-lr-inf"),
    pytest.param(lambda c: S3(lr=NAN), ValueError, r"lr=nan", id="s3-lr-nan"),
    pytest.param(lambda c: S3(steps=1), ValueError, r"steps=1: a sequence needs at least 2 steps", id="s3-steps"),
    pytest.param(lambda c: S3(p_silent=0.6, p_offscreen=0.6), ValueError, r"p_silent \+ p_offscreen \+ p_background",
                 id="s3-rates-sum"),
    pytest.param(lambda c: S3(modalities=("video", "video")), ValueError, r"modalities=\('video', 'video'\)",
                 id="s3-modalities-repeat"),
    pytest.param(lambda c: S3(bands=64.0), ValueError, r"bands=64\.0", id="s3-bands-float"),
    pytest.param(lambda c: S3(codebook_sizes=(1,)), ValueError, r"codebook_sizes=\(1,\)", id="s3-sizes-one"),
    pytest.param(lambda c: S3(device="gpu"), ValueError, r"Config\.device='gpu' " + NOT_DEVICE, id="s3-device"),
    # ---- presets
    pytest.param(lambda c: cp_rank_ablation.Config.preset("yes"), TypeError, r"quick='yes' is a str; accepted: True",
                 id="kit-preset-quick-str"),
    pytest.param(lambda c: kit.device("0"), ValueError, r"device='0' is not a device name", id="kit-device-digit"),
]


class _Obj(torch.nn.Module):
    """forward(x) returns the loss as `out` says: a scalar, a vector, a float or None."""

    def __init__(self, out="scalar"):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
        self.out = out

    def forward(self, x):
        y = self.w * x
        return {"scalar": lambda: y.sum(), "vector": lambda: y, "float": lambda: 1.5, "none": lambda: None}[self.out]()


def _train(c, obj=None, batches=lambda step: {"x": torch.ones(2)}, cfg=None, **kw):
    from workbench.engine import train

    return train(obj or _Obj(), batches, cfg or TrainConfig(steps=2, log_every=100), progress=False, **kw)


def _ckpt(c, content):
    """c.tmp/ckpt.pt holding `content` (bytes as they are, anything else through torch.save)."""
    f = c.tmp / "ckpt.pt"
    f.write_bytes(content) if isinstance(content, bytes) else torch.save(content, f)
    return f


ENGINE_CASES += [
    pytest.param(lambda c: TrainConfig(compile=""), ValueError, r"TrainConfig\.compile='' \(a blank string\)",
                 id="train-compile-empty"),
    pytest.param(lambda c: TrainConfig(compile="  "), ValueError, r"compile='  '", id="train-compile-blank"),
    pytest.param(lambda c: TrainConfig(betas=(NAN, 0.9)), ValueError, r"betas=\(nan, 0\.9\) \(item nan: not finite\)",
                 id="train-betas-nan"),
    pytest.param(lambda c: TrainConfig(grad_clip=True), TypeError, r"grad_clip=True", id="train-clip-bool"),
    pytest.param(lambda c: TrainConfig(fused_adamw="auto"), TypeError, r"fused_adamw='auto'", id="train-fused-auto"),
    pytest.param(lambda c: TrainConfig(steps="10"), TypeError, r"steps='10'", id="train-steps-str"),
    pytest.param(lambda c: TrainConfig(warmup=-0.1), ValueError, r"warmup=-0\.1", id="train-warmup-negative"),
    pytest.param(lambda c: _train(c, obj=_Obj("vector")), TypeError,
                 r"returned a tensor of shape \(2,\) as its loss; accepted: a scalar tensor", id="train-loss-vector"),
    pytest.param(lambda c: _train(c, obj=_Obj("float")), TypeError, r"returned 1\.5 \(float\) as its loss",
                 id="train-loss-float"),
    pytest.param(lambda c: _train(c, obj=_Obj("none")), TypeError, r"returned None \(NoneType\)", id="train-loss-none"),
    pytest.param(lambda c: _train(c, batches=lambda step: [torch.ones(2)]), TypeError,
                 r"batches\(0\) returned a list; accepted: a dict", id="train-batches-list"),
    pytest.param(lambda c: _train(c, batches=5), TypeError, r"batches=5 is a int; accepted: a function",
                 id="train-batches-not-callable"),
    pytest.param(lambda c: _train(c, cfg={"steps": 2}), TypeError, r"cfg=\{'steps': 2\} is a dict; accepted: a "
                 r"TrainConfig", id="train-cfg-dict"),
    pytest.param(lambda c: _train(c, checkpoint=c.tmp), ValueError, r"checkpoint='.*' is a folder; accepted: the path "
                 r"of a checkpoint file", id="train-checkpoint-folder"),
    pytest.param(lambda c: _train(c, checkpoint=_ckpt(c, b"PK\x03\x04junk")), ValueError,
                 r"ckpt\.pt is corrupt or not a workbench checkpoint", id="train-checkpoint-zip-junk"),
    pytest.param(lambda c: _train(c, checkpoint=_ckpt(c, {"a": torch.zeros(1)})), ValueError,
                 r"ckpt\.pt is not a workbench checkpoint \(it holds a dict with keys a\)",
                 id="train-checkpoint-foreign"),
    pytest.param(lambda c: _train(c, checkpoint=_ckpt(c, [1, 2, 3])), ValueError,
                 r"ckpt\.pt is not a workbench checkpoint \(it holds a list\)", id="train-checkpoint-list"),
    pytest.param(lambda c: _train(c, params=[]), ValueError, r"params=\[\] is empty", id="train-params-empty"),
    pytest.param(lambda c: _train(c, params=[torch.nn.Parameter(torch.ones(2))]), TypeError,
                 r"params hold a Parameter of shape \(2,\); accepted: \(name, parameter\) pairs",
                 id="train-params-not-named"),
]


def _tiny_copy(c, **edits):
    return _tiny_dir(c, config=_tiny_cfg(**edits))


MODEL_CASES += [
    pytest.param(lambda c: load_model("tiny-world-clip", pretrained=123), TypeError, r"pretrained=123 is a int",
                 id="load-pretrained-int"),
    pytest.param(lambda c: load_model("ViT-B-32", pretrained=5), TypeError, r"pretrained=5",
                 id="load-vit-pretrained-int"),
    pytest.param(lambda c: load_model(""), ValueError, r"unknown model ''; accepted", id="load-empty-name"),
    pytest.param(lambda c: load_model("hf:"), ValueError, r"model 'hf:' names nothing after 'hf:'", id="load-hf-empty"),
    pytest.param(lambda c: load_model("local-dir:"), ValueError, r"'local-dir:' names nothing", id="load-dir-empty"),
    pytest.param(lambda c: load_model("tiny-world-clip", pretrained=""), ValueError, r"pretrained='' is blank",
                 id="load-pretrained-blank"),
    pytest.param(lambda c: load_model(f"hf:{c.tmp}", pretrained="x.pt"), ValueError,
                 r"pretrained='x\.pt' with model 'hf:.*', which brings its own weights", id="load-hf-pretrained"),
    pytest.param(lambda c: load_model("ViT-B-32", pretrained=str(c.tmp)), ValueError,
                 r"pretrained='.*' is a folder; accepted for ViT-B-32: a weights file", id="load-vit-pretrained-dir"),
    pytest.param(lambda c: load_model("tiny-world-clip", device="cuda:-1"), ValueError, r"device='cuda:-1'",
                 id="load-device-cuda-negative"),
    pytest.param(lambda c: load_model("tiny-world-clip", device=["cpu"]), TypeError, r"device=\['cpu'\] is a list",
                 id="load-device-list"),
    pytest.param(lambda c: load_model(b"tiny-world-clip"), TypeError, r"got bytes", id="load-name-bytes"),
    pytest.param(lambda c: load_model("TINY-WORLD-CLIP"), ValueError, r"unknown model 'TINY-WORLD-CLIP'",
                 id="load-name-case"),
    pytest.param(lambda c: load_model("tiny-world-clip", pretrained=_garbage_file(c, "e.safetensors")), ValueError,
                 r"e\.safetensors is corrupt", id="load-tiny-pretrained-garbage"),
    pytest.param(lambda c: load_model("local-dir:" + _garbage_file(c, "f")), FileNotFoundError,
                 r"model folder .*/f does not exist \(or is not a folder\)", id="load-dir-is-file"),
    pytest.param(lambda c: load_model(_tiny_copy(c, **{"model_cfg.vision_cfg.width": -1})), ValueError,
                 r"open_clip_config\.json: model_cfg\.vision_cfg\.width=-1; accepted: a positive integer",
                 id="folder-width-negative"),
    pytest.param(lambda c: load_model(_tiny_copy(c, **{"model_cfg.text_cfg.context_length": "abc"})), ValueError,
                 r"model_cfg\.text_cfg\.context_length='abc'", id="folder-context-str"),
    pytest.param(lambda c: load_model(_tiny_copy(c, **{"model_cfg.embed_dim": 0})), ValueError,
                 r"model_cfg\.embed_dim=0", id="folder-embed-zero"),
    pytest.param(lambda c: load_model(_tiny_copy(c, **{"model_cfg.vision_cfg.layers": "two"})), ValueError,
                 r"model_cfg\.vision_cfg\.layers='two'", id="folder-layers-str"),
    pytest.param(lambda c: load_model(_tiny_copy(c, **{"preprocess_cfg.mean": [[0.5], 0.5, 0.5]})), ValueError,
                 r"mean=\[\[0\.5\], 0\.5, 0\.5\]", id="folder-mean-nested"),
    pytest.param(lambda c: c.model.zero_shot_head("circle", ["a {}"]), ValueError, r"got 'circle'",
                 id="zs-classnames-str"),
    pytest.param(lambda c: c.model.zero_shot_head(["circle"], []), ValueError, r"templates must be a non-empty list",
                 id="zs-templates-empty"),
    pytest.param(lambda c: c.model.tokenize(["a circle", 3]), TypeError, r"texts hold 3 \(int\); accepted: strings",
                 id="tokenize-int"),
    pytest.param(lambda c: c.model.encode_text(torch.rand(2, 24)), TypeError,
                 r"tokens have dtype torch\.float32; accepted: an integer tensor", id="encode-text-float-ids"),
    pytest.param(lambda c: c.model.encode_text(torch.zeros(24, dtype=torch.long)), ValueError,
                 r"tokens have shape \(24,\)", id="encode-text-1d"),
    pytest.param(lambda c: c.model.adaptable_layers(None), ValueError, r"unknown layer role None",
                 id="layer-role-none"),
]

CAP = lambda name: _lazy(f"workbench.eval.captioning.{name}")
VOC = lambda name: _lazy(f"workbench.eval.vocabulary.{name}")
EVAL_CASES += [
    pytest.param(lambda c: RET("recall_at_k")(A4 @ B4.T, torch.eye(4, dtype=torch.bool), True), TypeError, r"k=True",
                 id="recall-k-bool"),
    pytest.param(lambda c: RET("retrieval_from_features")(A4.long(), B4.long()), TypeError,
                 r"image_feats have dtype torch\.int64; accepted: floating-point features", id="retrieval-int-feats"),
    pytest.param(lambda c: RET("retrieval_from_features")(A4, B4, ["a"] * 3), ValueError, r"3 captions for 4 pairs",
                 id="retrieval-captions-count"),
    pytest.param(lambda c: RET("positives")(None, -1), ValueError, r"n=-1; accepted: an integer >= 0",
                 id="positives-n-negative"),
    pytest.param(lambda c: RET("encode_images")(c.model, c.x, batch_size=0), ValueError, r"batch_size=0",
                 id="encode-images-batch"),
    pytest.param(lambda c: RET("evaluate_retrieval")(c.model, c.world, "nope", n=2), KeyError, r"unknown split 'nope'",
                 id="retrieval-split"),
    pytest.param(lambda c: RET("zero_shot_classification")(c.model, c.world, "heldout", n=-1), ValueError, r"n=-1",
                 id="zero-shot-classification-n"),
    pytest.param(lambda c: E("localization_scores")(torch.rand(2, 4, 4), torch.zeros(3, 8, 8, dtype=torch.bool)),
                 ValueError, r"got \(2, 4, 4\) and \(3, 8, 8\)", id="pointing-batch-mismatch"),
    pytest.param(lambda c: E("localization_scores")(torch.rand(2, 4, 4), MASKS, threshold="0.5"), TypeError,
                 r"threshold='0\.5'", id="pointing-threshold-str"),
    pytest.param(lambda c: E("predict")(c.clf, c.world, "heldout", n=2, offset=0.5), TypeError, r"offset=0\.5",
                 id="predict-offset-float"),
    pytest.param(lambda c: E("predict")(c.clf, c.world, "nope", n=2), KeyError, r"unknown split 'nope'",
                 id="predict-split"),
    pytest.param(lambda c: E("top1")(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long)),
                 ValueError, r"preds and targets are empty \(shape \(0,\)\)", id="top1-empty"),
    pytest.param(lambda c: E("accuracy")(c.clf, c.world, "heldout", n=0), ValueError, r"n=0", id="accuracy-n-zero"),
    pytest.param(lambda c: E("zero_shot_accuracy")(c.model, c.world, "heldout", n=2), TypeError,
                 r"splits='heldout' is one string", id="zero-shot-accuracy-splits-str"),
    pytest.param(lambda c: CAP("score_captions")(["a red circle"], [[]], [{}]), ValueError,
                 r"references\[0\]=\[\]; accepted: a non-empty list", id="captions-refs-empty"),
    pytest.param(lambda c: CAP("score_captions")(["a red circle"], ["a red circle"], [{"object": "circel"}]),
                 ValueError, r"slot 'object' has target 'circel', which no caption can name",
                 id="captions-slot-target"),
    pytest.param(lambda c: CAP("corpus_metrics")(["a red circle"], ["a red circle"]), ValueError,
                 r"references\[0\]='a red circle'", id="corpus-refs-strings"),
    pytest.param(lambda c: GAP("centroid_gap")(A4[:0], B4[:0]), ValueError, r"got 0 \(shapes \(0, 8\) and \(0, 8\)\)",
                 id="gap-empty"),
    pytest.param(lambda c: GAP("centroid_gap")(A4, B4[:, :4]), ValueError, r"got \(4, 8\) and \(4, 4\)",
                 id="gap-dims"),
    pytest.param(lambda c: GAP("pair_distance")(A4.long(), B4.long()), TypeError, r"dtype torch\.int64",
                 id="gap-int-feats"),
    pytest.param(lambda c: GAP("uniformity")(A4[:1]), ValueError, r"got \(1, 8\)", id="uniformity-one-point"),
    pytest.param(lambda c: GAP("shift")(A4, B4, True), TypeError, r"lam=True", id="shift-lam-bool"),
    pytest.param(lambda c: GAP("shift_curve")(A4, B4, []), ValueError, r"lambdas=\[\] is empty",
                 id="shift-curve-empty"),
    pytest.param(lambda c: GAP("gap_metrics")(A4, B4, captions=["a"] * 3), ValueError, r"3 captions for 4 pairs",
                 id="gap-metrics-captions"),
    pytest.param(lambda c: GAP("cosine_distributions")(A4, B4, captions="abcd"), TypeError,
                 r"captions='abcd' is one string", id="cosine-captions-str"),
    pytest.param(lambda c: GAP("contrastive_loss")(A4, B4[:3], 0.1), ValueError, r"got \(4, 8\) and \(3, 8\)",
                 id="contrastive-shapes"),
    pytest.param(lambda c: VOC("word_token_norms")(c.model, "circle"), TypeError, r"words='circle' is one string",
                 id="word-norms-str"),
    pytest.param(lambda c: VOC("word_token_norms")(c.model, [3]), TypeError, r"words hold 3 \(int\)",
                 id="word-norms-int"),
    pytest.param(lambda c: E("localization_table")(c.clf, c.world, split="nope", n=2, progress=False), KeyError,
                 r"unknown split 'nope'", id="loc-table-split"),
    pytest.param(lambda c: E("centre_prior")(2.0, 8), TypeError, r"batch=2\.0", id="centre-batch-float"),
]


def _unicode_model(shapes=None):
    from workbench.methods.codebook import UniCode

    return UniCode(CB(dim=8, codes=4, heads=2, specific_dim=8, club=False, cpc=False, layers=1),
                   {"video": (5,), "audio": (5,)} if shapes is None else shapes)


CBM = lambda name: _lazy(f"workbench.methods.codebook.{name}")
MAC = lambda **kw: ModeApproxConfig(**kw)
BL = lambda name: _lazy(f"workbench.methods.baselines.{name}")
TRAIN_UNICODE = lambda c, model, **kw: CBM("train_unicode")(model, kw.pop("data", None) or _feats(),
                                                             **{"steps": 1, "batch_size": 2, **kw})

CONFIG_CASES += [
    # ---- codebook
    pytest.param(lambda c: CBM("CodebookConfig").variant("full", stepz=1), TypeError,
                 r"CodebookConfig has no field\(s\) 'stepz' in variant\('full', \.\.\.\); accepted: dim, codes",
                 id="codebook-variant-field"),
    pytest.param(lambda c: CBM("CodebookConfig").variant("fsq", codes=3), ValueError, r"codes=3 with quantizer='fsq'",
                 id="codebook-variant-fsq-codes"),
    pytest.param(lambda c: CB(quantizer="fsq", fsq_levels=(8.0, 5, 5, 5)), TypeError, r"\(item 8\.0\)",
                 id="codebook-fsq-float"),
    pytest.param(lambda c: CB(reset_recent=2.5), TypeError, r"reset_recent=2\.5", id="codebook-recent-float"),
    pytest.param(lambda c: CB(club_hidden=1), ValueError, r"club_hidden=1", id="codebook-club-hidden"),
    pytest.param(lambda c: CB(rvq_depth=0), ValueError, r"rvq_depth=0", id="codebook-rvq-depth"),
    pytest.param(lambda c: CB(reset_rule="all"), ValueError, r"reset_rule='all'; accepted: one of any, every",
                 id="codebook-reset-rule"),
    pytest.param(lambda c: _unicode_model({"video": 5, "audio": (5,)}), TypeError, r"input_shapes\['video'\]=5",
                 id="unicode-shape-int"),
    pytest.param(lambda c: _unicode_model({"video": (0,), "audio": (5,)}), ValueError, r"got \(0,\)",
                 id="unicode-shape-zero"),
    pytest.param(lambda c: _unicode_model({"video": (5,), "speech": (5,)}), ValueError, r"unknown modality 'speech'",
                 id="unicode-modality"),
    pytest.param(lambda c: TRAIN_UNICODE(c, _unicode_model(), checkpoints=[0.5]), TypeError,
                 r"checkpoints item=0\.5; accepted: an integer", id="unicode-checkpoints-float"),
    pytest.param(lambda c: TRAIN_UNICODE(c, _unicode_model(), checkpoints=3), TypeError,
                 r"checkpoints=3 is not a sequence", id="unicode-checkpoints-int"),
    pytest.param(lambda c: TRAIN_UNICODE(c, _unicode_model({"video": (5,), "text": (5,)})), ValueError,
                 r"the data lacks 'text', which the model was built for", id="unicode-data-lacks-modality"),
    pytest.param(lambda c: TRAIN_UNICODE(c, _unicode_model({"video": (7,), "audio": (5,)})), ValueError,
                 r"do not match the per-step shape \(7,\)", id="unicode-feature-dim"),
    pytest.param(lambda c: CBM("toc_dimensions")(torch.randn(4, 8), 2.5), TypeError,
                 r"keep=2\.5; accepted: an integer in \[1, 8\]", id="toc-keep-float"),
    pytest.param(lambda c: CBM("toc_dimensions")(torch.randn(4, 8), True), TypeError, r"keep=True", id="toc-keep-bool"),
    pytest.param(lambda c: CBM("toc_scores")(torch.full((4, 8), NAN)), ValueError, r"codebook holds 32 non-finite",
                 id="toc-nan"),
    pytest.param(lambda c: CBM("code_usage")(_unicode_model(), _feats(), batch_size=0), ValueError, r"batch_size=0",
                 id="code-usage-batch"),
    pytest.param(lambda c: CBM("code_usage")(_unicode_model(), _feats().features, step_labels=_feats().step_labels,
                                             classes=-1), ValueError, r"classes=-1", id="code-usage-classes-negative"),
    pytest.param(lambda c: CBM("code_usage")(_unicode_model(), _feats().features, step_labels=_feats().step_labels,
                                             classes=2.5), TypeError, r"classes=2\.5", id="code-usage-classes-float"),
    pytest.param(lambda c: CBM("code_retrieval")(_unicode_model(), _feats(), "video", "audio", measure="Histogram"),
                 ValueError, r"'Histogram'; accepted: histogram, steps", id="code-retrieval-measure"),
    pytest.param(lambda c: HEAD(hidden=0), ValueError, r"HeadConfig\.hidden=0", id="head-hidden"),
    pytest.param(lambda c: CBM("transfer_matrix")(_unicode_model(), _feats(), _feats(), HEAD(steps=1),
                                                  dims=torch.tensor([999])), ValueError,
                 r"dims=\[999\] are not code dimensions; accepted: .* in \[0, 7\]", id="transfer-dims"),
    pytest.param(lambda c: CBM("restore")(_unicode_model(), CBM("TrainHistory")(), 3), ValueError,
                 r"no snapshot at step 3; accepted: a step taken", id="restore-step"),
    pytest.param(lambda c: CBM("perplexity")(torch.ones(4, 2)), ValueError, r"usage has shape \(4, 2\)",
                 id="perplexity-2d"),
    pytest.param(lambda c: _feats(step_labels=torch.tensor([[0.5, 1, 2]] * 4)), TypeError,
                 r"step_labels have dtype torch\.float32; accepted: integer class indices", id="event-labels-float"),
    pytest.param(lambda c: _feats(present={"video": torch.ones(4, 2, dtype=torch.bool),
                                           "audio": torch.ones(4, 3, dtype=torch.bool)}), ValueError,
                 r"present\['video'\] has shape \(4, 2\)", id="event-present-shape"),
    # ---- mode approximation and peft tuners
    pytest.param(lambda c: MAC(scale=0.0), ValueError, r"ModeApproxConfig\.scale=0\.0; accepted: .* > 0",
                 id="modes-scale-zero"),
    pytest.param(lambda c: MAC(targets=("vision:attn",), towers=("text",)), ValueError,
                 r"target 'vision:attn' names tower 'vision'", id="modes-target-tower"),
    pytest.param(lambda c: MAC(targets=("attn:vision",)), ValueError, r"unknown kind 'vision'",
                 id="modes-target-order"),
    pytest.param(lambda c: ModeApproxConfig.placed("Paper"), ValueError, r"placement='Paper'", id="modes-placed-case"),
    pytest.param(lambda c: ModeApproxConfig.paper(stepz=1), TypeError, r"ModeApproxConfig has no field\(s\) 'stepz'",
                 id="modes-paper-field"),
    pytest.param(lambda c: inject_mode_approx(c.model.copy(), MAC(rank=2, train=("haed",))), ValueError,
                 r"train entry 'haed' matches no parameter", id="modes-train-nothing"),
    pytest.param(lambda c: MAC(towers="audio"), ValueError, r"towers=\('audio',\)", id="modes-towers-str"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, towers=()), ValueError, r"towers=\(\)",
                 id="lora-towers-empty"),
    pytest.param(lambda c: apply_lora(c.model.copy(), r=2, towers="visoin"), ValueError, r"'visoin'",
                 id="lora-towers-typo"),
    pytest.param(lambda c: apply_lokr(c.model.copy(), r=1000), ValueError, r"LoKr r=1000 is larger than .*smaller "
                 r"side 128", id="lokr-rank-above-width"),
    pytest.param(lambda c: apply_lokr(c.model.copy(), r=2, alpha=INF), ValueError, r"alpha=inf", id="lokr-alpha-inf"),
    pytest.param(lambda c: apply_vera(c.model.copy(), r=2, targets=()), ValueError,
                 r"targets=\(\); accepted: distinct non-empty module names \(at least one\)", id="vera-targets-empty"),
    pytest.param(lambda c: BL("lora_rank_for_budget")(c.model, n_params=-5), ValueError, r"n_params=-5",
                 id="lora-budget-negative"),
    pytest.param(lambda c: BL("lora_rank_for_budget")(c.model, n_params=1e3), TypeError, r"n_params=1000\.0",
                 id="lora-budget-float"),
    pytest.param(lambda c: BL("lora_sites")(c.model, {"vision": ("nope",)}), ValueError,
                 r"site 'vision' is no module of .*; accepted: full module names", id="lora-sites-unknown"),
    pytest.param(lambda c: BL("apply_full_finetune")(c.model.copy(), exclude="visual"), TypeError,
                 r"exclude='visual'; accepted: a sequence", id="full-ft-exclude-str"),
    pytest.param(lambda c: BL("apply_linear_probe")(c.model.copy(), [], ["a {}"]), ValueError,
                 r"classnames must be a non-empty list", id="linear-probe-no-classes"),
    pytest.param(lambda c: BL("lora_param_count")(c.model, r=2, targets=("nope",)), ValueError,
                 r"targets \('nope',\) match no module", id="lora-count-targets"),
    pytest.param(lambda c: _lazy("workbench.methods.mode_approx.counting.open_clip_architecture")("ViT-Nope"),
                 ValueError, r"'ViT-Nope'", id="counting-architecture"),
]


def _train_folder(c):
    """c.tmp/tr with two class folders a/ and b/, one PNG each."""
    from PIL import Image

    for cls in ("a", "b"):
        (c.tmp / "tr" / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(c.tmp / "tr" / cls / "0.png")
    return str(c.tmp / "tr")


def _paper_labels(c, labels):
    a = _npy(c, np.zeros((2, 3, 4), dtype=np.float32), "a.npy")
    v = _npy(c, np.zeros((2, 3, 4), dtype=np.float32), "v.npy")
    return _lazy("workbench.data.load_paper_features")(video=v, audio=a, labels=_npy(c, labels, "y.npy"))


WC = lambda **kw: WorldConfig(**kw)
EC = lambda **kw: _lazy("workbench.world.EventConfig")(**kw)
MT = lambda name: _lazy(f"workbench.data.modular_tasks.{name}")
DATA_CASES += [
    # ---- the world
    pytest.param(lambda c: WC(size_range=(0.3, 0.1)), ValueError,
                 r"size_range=\(0\.3, 0\.1\): the smallest radius is above the largest", id="world-size-range-order"),
    pytest.param(lambda c: WC(size_range=(0.1, 5.0)), ValueError, r"size_range=\(0\.1, 5\.0\) \(item 5\.0\); accepted: "
                 r"a tuple of 2 finite numbers in \(0, 0\.5\)", id="world-size-range-huge"),
    pytest.param(lambda c: WC(max_rotation=NAN), ValueError, r"max_rotation=nan \(not finite\)", id="world-rotation"),
    pytest.param(lambda c: WC(rim=-1), ValueError, r"WorldConfig\.rim=-1", id="world-rim"),
    pytest.param(lambda c: WC(p_tie="0.9"), TypeError, r"WorldConfig\.p_tie='0\.9'", id="world-p-tie-str"),
    pytest.param(lambda c: WC(seed=-1), ValueError, r"WorldConfig\.seed=-1; accepted: an integer >= 0",
                 id="world-seed-negative"),
    pytest.param(lambda c: c.world.clips("pretrain", [0], frames=2.5), TypeError, r"frames=2\.5",
                 id="clips-frames-float"),
    pytest.param(lambda c: c.world.clips("pretrain", [0], audio_length=0), ValueError,
                 r"audio_length=0; accepted: an integer >= 8", id="clips-audio-zero"),
    pytest.param(lambda c: c.world.clips("pretrain", [0], frames=8, audio_length=4), ValueError, r"audio_length=4",
                 id="clips-audio-below-frames"),
    pytest.param(lambda c: c.world.sounds("pretrain", [0], length=-1), ValueError, r"length=-1", id="sounds-negative"),
    pytest.param(lambda c: c.world.sounds("pretrain", [0], length=0), ValueError, r"length=0", id="sounds-zero"),
    pytest.param(lambda c: c.world.sounds("pretrain", []), ValueError, r"indices=\[\] holds no index",
                 id="sounds-empty"),
    pytest.param(lambda c: c.world.clips("pretrain", range(0)), ValueError, r"indices=range\(0, 0\) holds no index",
                 id="clips-empty"),
    pytest.param(lambda c: c.world.batch("pretrain", [2 ** 70]), ValueError, r"index 1180591620717411303424 is out of "
                 r"range", id="indices-too-large"),
    pytest.param(lambda c: _lazy("workbench.world.events")(c.world, "pretrain", [0], config="x"), TypeError,
                 r"config='x' is a str; accepted: an EventConfig", id="events-config-str"),
    pytest.param(lambda c: EC(pitch_jitter="0.1"), ValueError, r"pitch_jitter='0\.1'", id="event-config-jitter-str"),
    pytest.param(lambda c: EC(steps=10.0), TypeError, r"steps=10\.0", id="event-config-steps-float"),
    # ---- data builders and files
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, train="nope"), ValueError, r"train='nope'",
                 id="world-splits-train"),
    pytest.param(lambda c: _lazy("workbench.data.WorldSplits")(c.world, id_test="nope"), ValueError,
                 r"id_test='nope'", id="world-splits-id-test"),
    pytest.param(lambda c: _lazy("workbench.data.ImageFolderSplits")(_garbage_file(c, "f"), {"a": str(c.tmp)}),
                 NotADirectoryError, r"train_dir '.*/f' is not a folder", id="imagefolder-train-file"),
    pytest.param(lambda c: _lazy("workbench.data.ImageFolderSplits")(str(c.tmp), {"a": str(c.tmp)}), ValueError,
                 r"holds no class folders with images", id="imagefolder-no-classes"),
    pytest.param(lambda c: _lazy("workbench.data.ImageFolderSplits")(str(c.tmp), {"a": str(c.tmp)}, templates=()),
                 ValueError, r"templates=\(\)", id="imagefolder-templates-empty"),
    pytest.param(lambda c: _lazy("workbench.data.ImageFolderSplits")(_train_folder(c), {"t": str(c.tmp / "tr")},
                                                                      classnames=("a", "b", "c")), ValueError,
                 r"classnames has 3 names but .* has 2 class folders: a, b; accepted: one name per class folder",
                 id="imagefolder-classnames-count"),
    pytest.param(lambda c: _paper_labels(c, np.zeros((5, 7), dtype=np.float32)), ValueError,
                 r"labels given as \(N, T\) class indices need classes=", id="paper-labels-shape"),
    pytest.param(lambda c: MT("task_set")("retrieval", c.world, "pretrain", [0]), ValueError, r"task='retrieval'",
                 id="task-set-unknown"),
    pytest.param(lambda c: MT("answer_index")("colour", "circle"), ValueError, r"'circle' is not a colour answer",
                 id="answer-index-word"),
    pytest.param(lambda c: MT("task_sets")(c.world, "pretrain", [0], tasks="qa"), TypeError,
                 r"tasks='qa' is one string", id="task-sets-str"),
    pytest.param(lambda c: MT("captioning")(c.world, "pretrain", [0], media="Video"), ValueError, r"media='Video'",
                 id="captioning-media-case"),
    pytest.param(lambda c: _lazy("workbench.data.EventFeatures").load(_ckpt(c, [1, 2])), ValueError,
                 r"ckpt\.pt does not hold EventFeatures\.state\(\) \(keys: list\)", id="event-features-file-list"),
    pytest.param(lambda c: _lazy("workbench.data.EventFeatures").load(_ckpt(c, {"features": 1})), ValueError,
                 r"\(keys: features\)", id="event-features-file-keys"),
    pytest.param(lambda c: _lazy("workbench.methods.robust_ft.cam_cache.TeacherCams").load(_ckpt(c, b"PK\x03\x04")),
                 ValueError, r"teacher-CAM cache .*ckpt\.pt is corrupt", id="teacher-cams-zip-junk"),
    pytest.param(lambda c: _lazy("workbench.methods.robust_ft.cam_cache.TeacherCams").load(_ckpt(c, {"x": 1})),
                 ValueError, r"ckpt\.pt is not one \(it lacks cams, done, method; it holds keys x\)",
                 id="teacher-cams-keys"),
]

V = lambda name: _lazy(f"workbench.viz.{name}")
VIZ_CASES = [
    pytest.param(lambda c: V("sample_grid")(c.world, splits=("pretrain",), n=2.5), TypeError, r"n=2\.5",
                 id="sample-grid-n-float"),
    pytest.param(lambda c: V("sample_grid")(c.world, splits=("pretrain",), n=1, start=-3), ValueError, r"start=-3",
                 id="sample-grid-start"),
    pytest.param(lambda c: V("clip_strip")(c.world, indices=()), ValueError, r"indices=\(\); accepted: at least one",
                 id="clip-strip-empty"),
    pytest.param(lambda c: V("clip_strip")(c.world, split="nope"), ValueError, r"unknown split\(s\) \['nope'\]",
                 id="clip-strip-split"),
    pytest.param(lambda c: V("scene_png")(c.world, "pretrain", 0, mask_style="outline"), ValueError,
                 r"mask_style='outline'", id="scene-png-mask-style"),
    pytest.param(lambda c: V("scene_png")(c.world, "pretrain", 0.5), TypeError, r"index 0\.5", id="scene-png-index"),
    pytest.param(lambda c: V("browser")(c.world, max_index=-1), ValueError, r"max_index=-1", id="browser-max-index"),
    pytest.param(lambda c: V("markdown_table")([{"a": 0.5}], digits=-1), ValueError, r"digits=-1",
                 id="markdown-digits"),
    pytest.param(lambda c: V("markdown_table")({"a": 0.5}), TypeError, r"rows=\{'a': 0\.5\} is a dict",
                 id="markdown-rows-dict"),
    pytest.param(lambda c: V("confusion_figure")(np.full((2, 2), NAN), ["a", "b"]), ValueError,
                 r"counts hold 4 non-finite values \(first: nan\); accepted: finite counts >= 0", id="confusion-nan"),
    pytest.param(lambda c: V("confusion_figure")(-np.ones((2, 2)), ["a", "b"]), ValueError,
                 r"counts hold negative counts \(down to -1\)", id="confusion-negative"),
    pytest.param(lambda c: V("accuracy_bars")({}), ValueError, r"accuracy=\{\}; accepted: a non-empty dict",
                 id="accuracy-bars-empty"),
    pytest.param(lambda c: V("accuracy_bars")({"heldout": NAN}), ValueError, r"accuracy\['heldout'\]=nan",
                 id="accuracy-bars-nan"),
    pytest.param(lambda c: V("per_class_bars")({"circle": 1.5}), ValueError, r"per_class\['circle'\]=1\.5",
                 id="per-class-bars-range"),
    pytest.param(lambda c: V("sounds_figure")(c.world, classes=("nope",)), ValueError, r"unknown class\(s\) \['nope'\]",
                 id="sounds-figure-class"),
    pytest.param(lambda c: V("usage_histograms")(np.ones((4, 2, 3)), modalities=("a",)), ValueError,
                 r"1 modality names \('a',\) .*; accepted: 2 names", id="usage-histograms-names"),
    pytest.param(lambda c: V("purity_figure")(np.ones((4, 2, 3)), top=0), ValueError, r"top=0", id="purity-top"),
    pytest.param(lambda c: V("code_map")(np.ones((3, 2)), np.ones((4, 2, 3))), ValueError,
                 r"3 code vectors for a usage tensor of 4 codes \(vectors of shape \(3, 2\)\); accepted",
                 id="code-map-vectors"),
    pytest.param(lambda c: V("lit_graph")("nope"), ValueError, r"unknown task 'nope'", id="lit-graph-task"),
    pytest.param(lambda c: V("module_graphs")(tasks=("nope",)), ValueError, r"unknown task 'nope'",
                 id="module-graphs-task"),
    pytest.param(lambda c: V("claims_markdown")("abc"), TypeError, r"claims='abc' is a str", id="claims-markdown-str"),
    pytest.param(lambda c: V("seeds_markdown")([1, 2]), TypeError, r"family=\[1, 2\] is a list", id="seeds-markdown"),
    pytest.param(lambda c: _lazy("workbench.viz.cam.cam_gallery")(torch.rand(2, 3, 8, 8),
                                                                   {"gradcam": torch.rand(3, 4, 4)}),
                 ValueError, r"cams\['gradcam'\] has 3 maps .*accepted: one map per image", id="cam-gallery-count"),
    pytest.param(lambda c: _lazy("workbench.viz.mode_approx.rank_curve")([]), ValueError, r"table is empty",
                 id="rank-curve-empty"),
    pytest.param(lambda c: _lazy("workbench.viz.mode_approx.rank_curve")([{"method": "lora", "r1": 0.5}],
                                                                         metrics=("acc",)), ValueError,
                 r"no trained method's row has a value for any of metrics=\('acc',\)", id="rank-curve-metrics"),
    pytest.param(lambda c: _lazy("workbench.viz.robust_ft.id_ood_scatter")([]), ValueError, r"table is empty",
                 id="id-ood-scatter-empty"),
    pytest.param(lambda c: V("code_timeline")({"video": np.zeros((2, 3), dtype=int)}, np.zeros((2, 3), dtype=int),
                                              classes=("a",)), ValueError, r"codes\['video'\] has shape \(2, 3\)",
                 id="code-timeline-two-sequences"),
]

CLAIM = {"id": "T-1", "study": "toy", "words": "a beats b", "a": "a", "b": "b", "metric": "acc", "verdict": "supported"}


def _result(c, data, stem="01_x"):
    """c.tmp/A, a run folder whose <stem>/result.json holds `data` (text as it is, else as JSON)."""
    (c.tmp / "A" / stem).mkdir(parents=True, exist_ok=True)
    (c.tmp / "A" / stem / "result.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return c.tmp / "A"


COMPARE = lambda a, b: _lazy("workbench.compare.compare")(a, b)
COMPARE_CASES += [
    pytest.param(lambda c: COMPARE(_result(c, {"rows": [{**ROW, "method": 1}]}), c.tmp / "A"),
                 ValueError, r"rows\[0\] has method=1; accepted: a method id \(a string\)", id="compare-method-int"),
    pytest.param(lambda c: COMPARE(_result(c, "[" * 100_000 + "]" * 100_000), c.tmp / "A"),
                 ValueError, r"result\.json nests its JSON too deeply to read", id="compare-deep-json"),
    pytest.param(lambda c: COMPARE(_result(c, {"rows": [], "claims": "x"}), c.tmp / "A"),
                 ValueError, r"'claims' is a JSON str; accepted: a list of claim objects", id="compare-claims-str"),
    pytest.param(lambda c: COMPARE(_result(c, {"rows": [ROW, ROW]}), c.tmp / "A"),
                 ValueError, r"the cell m\|1\|0 \(method\|setting\|seed\) has two rows", id="compare-duplicate-rows"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_result(c, {"rows": [], "claims": [1, 2]})), ValueError,
                 r"'claims' is a JSON list holding other things than objects", id="claims-ints"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_result(c, {"rows": [], "claims": {"a": 1}})),
                 ValueError, r"'claims' is a JSON dict; accepted", id="claims-dict"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_result(c, {"rows": [], "claims": [CLAIM]}), "nope"),
                 ValueError, r"no claims of study 'nope' in .*; accepted: a study with claims there .*: toy",
                 id="claims-study-unknown"),
    pytest.param(lambda c: _lazy("workbench.runner.run_ledger")(_result(c, '{"rows": [], "claims": [[[')), ValueError,
                 r"result\.json cannot be read", id="claims-truncated"),
    pytest.param(lambda c: kit.write_json_atomic(c.tmp / "r.json", {"x": object()}), TypeError,
                 r"the data for .*r\.json cannot be written as JSON .*; accepted: numbers, strings",
                 id="write-json-object"),
    pytest.param(lambda c: CHK("safe_torch_load")(c.tmp), OSError, r"is a folder; accepted: a torch file",
                 id="safe-load-folder"),
]


def _output_dir(c, where):
    """kit.output_dir at c.tmp/<where> (see _odd_paths)."""
    return kit.output_dir(str(_odd_paths(c) / where), "toy")


TORCH_SAVE_OUT_OF_ROOM = """
import json, sys, torch
from pathlib import Path
from tests.disks import file_size_limit
from workbench.engine import save_atomic
target = Path(sys.argv[1])
try:
    with file_size_limit(64 * 1024):
        save_atomic({"w": torch.zeros(100_000)}, target)  # 400 kB: torch's writer fails past 64 kB
except BaseException as e:
    print(json.dumps({"type": type(e).__name__, "oserror": isinstance(e, OSError), "message": str(e)}))
"""


def _torch_save_out_of_room(c, old=None):
    """torch.save through atomic_path under a 64 kB file-size limit, in a subprocess (the limit stays there): its
    error is raised here as an OSError with the child's message when the child raised one (else AssertionError),
    after checking that the target kept its old content (or was not made) and no temporary file is left."""
    import subprocess
    import sys

    folder = c.tmp / "room"
    folder.mkdir()
    target = folder / "ckpt.pt"
    if old is not None:
        target.write_text(old)
    done = subprocess.run([sys.executable, "-c", TORCH_SAVE_OUT_OF_ROOM, str(target)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip(), done.stderr[-2000:]
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert (target.read_text() == old) if old is not None else not target.exists()
    assert [p.name for p in folder.iterdir()] == ([target.name] if old is not None else []), list(folder.iterdir())
    if not error["oserror"]:
        raise AssertionError(f"torch.save out of room raised {error['type']}: {error['message']}")
    raise OSError(error["message"])


DISK_CASES += [
    pytest.param(lambda c: _output_dir(c, "file"), ValueError,
                 r"output folder \(output_dir\) /.*/file is a file, not a folder" + FOLDER_SAYS, id="output-dir-file"),
    pytest.param(lambda c: _output_dir(c, "loop"), ValueError,
                 r"output folder \(output_dir\) /.*/loop goes round a loop", id="output-dir-symlink-loop"),
    pytest.param(lambda c: _output_dir(c, "file/out"), ValueError, r"/file/out cannot be a folder: a part of it is a "
                 r"file", id="output-dir-under-file"),
    pytest.param(lambda c: _output_dir(c, "dangling"), ValueError, r"/dangling is a symlink to nowhere",
                 id="output-dir-dangling"),
    pytest.param(lambda c: kit.output_dir(3, "toy"), TypeError, r"output_dir=3 is a int; accepted: a folder path",
                 id="output-dir-int"),
    pytest.param(lambda c: _torch_save_out_of_room(c), OSError,
                 r"^could not write /.*/room/ckpt\.pt: File too large; no partial file was left$",
                 id="full-disk-torch-save"),
]


API_CASES += (ENGINE_CASES + CHECK_CASES + CONFIG_CASES + MODEL_CASES + EVAL_CASES + DATA_CASES + COMPARE_CASES
              + DISK_CASES + STUDY_CASES + VIZ_CASES)


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
    # ---- issue 26, the second probe
    pytest.param(["compare", "{tmp}", "{tmp}", "--atol", "inf"], r"--atol inf must be >= 0 and finite",
                 id="cli-compare-atol-inf"),
    pytest.param(["compare", "{tmp}", "{tmp}", "--rtol", "inf"], r"--rtol inf must be >= 0 and finite",
                 id="cli-compare-rtol-inf"),
    pytest.param(["compare", "{tmp}", "{tmp}", "--rtol", "nan"], r"--rtol nan must be", id="cli-compare-rtol-nan"),
    pytest.param(["sweep", "02", "--executor", "Local"], r"executor 'Local' is not known; accepted: local, slurm",
                 id="cli-sweep-executor-case"),
    pytest.param(["sweep", "02", "--timeout-min", "inf"], r"--timeout-min inf: must be finite",
                 id="cli-sweep-timeout-inf"),
    pytest.param(["sweep", "02", "--mem-gb", "inf"], r"--mem-gb inf: must be finite", id="cli-sweep-mem-inf"),
    pytest.param(["sweep", "02", "--mem-gb", "nan"], r"--mem-gb nan: must be > 0", id="cli-sweep-mem-nan"),
    pytest.param(["sweep", "02", "--quick", "-p", "lr", "-1.0"], r"02_cp_rank_ablation: Config\.lr=-1\.0; accepted",
                 id="cli-sweep-lr"),
    pytest.param(["sweep", "99"], r"no such notebook: '99'", id="cli-sweep-notebook"),
    pytest.param(["sweep", "00"], r"00_world_and_model has no study cells to sweep", id="cli-sweep-no-cells"),
    pytest.param(["sweep", "02", "--slurm-partition", "gpu"], r"--slurm-partition is for --executor slurm",
                 id="cli-sweep-partition-local"),
    pytest.param(["pretrain", "--seed", "-1", "--out", "{tmp}/pre"], r"PretrainConfig\.seed=-1; accepted",
                 id="cli-pretrain-seed-negative"),
    pytest.param(["run", "00", "--notebooks-dir", "{tmp}/file"], r"no such notebook: '00'; available: none",
                 id="cli-run-notebooks-dir"),
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
    """121 cases before issue 26; its API areas added 267 (engine, checks, configs, models, eval, data, compare,
    folders and disks), its second probe 270 more (257 in the areas, two of them new: study configs and viz;
    13 commands)."""
    assert len(API_CASES) + len(CLI_CASES) == 664
    areas = (ENGINE_CASES, CHECK_CASES, CONFIG_CASES, MODEL_CASES, EVAL_CASES, DATA_CASES, COMPARE_CASES, DISK_CASES,
             STUDY_CASES, VIZ_CASES)
    assert sum(map(len, areas)) == 530 and all(len(a) >= 10 for a in areas)
    ids = [p.id for p in API_CASES + CLI_CASES]
    assert len(set(ids)) == len(ids), "case ids repeat"


@pytest.mark.parametrize("call", [p.values[0] for p in MODEL_CASES if p.id.startswith(("crafted", "corrupt"))])
def test_refused_files_never_advise_loading_unsafely(ctx, call):
    """torch's refusal advises `weights_only=False`; the workbench's own message replaces it."""
    with pytest.raises(ValueError) as err:
        call(ctx)
    assert "weights_only" not in str(err.value) and "False" not in str(err.value), str(err.value)


def test_equal_infinities_and_nans_compare_same(tmp_path):
    from workbench import compare

    for name, row in (("A", {**ROW, "x": float("inf"), "y": float("nan"), "z": -float("inf")}),
                      ("B", {**ROW, "x": float("inf"), "y": float("nan"), "z": -float("inf")}),
                      ("C", {**ROW, "x": 1e300, "y": float("nan"), "z": -float("inf")})):
        (tmp_path / name / "01_x").mkdir(parents=True)
        (tmp_path / name / "01_x" / "result.json").write_text(json.dumps({"rows": [row]}))  # Infinity, NaN
    assert all(c.ok for c in compare.compare(tmp_path / "A", tmp_path / "B"))
    assert "SAME" in compare.report(compare.compare(tmp_path / "A", tmp_path / "B"))
    loose = compare.compare(tmp_path / "A", tmp_path / "C", rtol=10.0, atol=10.0)  # no tolerance reaches inf
    assert not loose[0].ok and [ln.key for ln in loose[0].lines if not ln.ok] == ["cells.m|1|0.x"]


def test_a_diverged_run_saves_no_checkpoint(tmp_path):
    from workbench.engine import train

    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(FloatingPointError, match="at step 1 of 4"):
        train(_NanObjective(), lambda step: {"x": torch.ones(2)},
              TrainConfig(steps=4, lr=1e-2, log_every=100, checkpoint_every=2), checkpoint=ckpt, progress=False)
    assert not ckpt.exists() and list(tmp_path.iterdir()) == []


def test_atomic_path_names_are_unique_and_leave_nothing(tmp_path):
    from workbench.checks import atomic_path

    target = tmp_path / "f.pt"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b and a.parent == b.parent == tmp_path
        a.write_text("a")
        b.write_text("b")
    assert target.read_text() == "a" and [p.name for p in tmp_path.iterdir()] == ["f.pt"]  # the last to finish
    with pytest.raises(RuntimeError), atomic_path(target) as c:
        c.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "a" and [p.name for p in tmp_path.iterdir()] == ["f.pt"]


def test_a_writer_failure_with_room_left_is_not_a_write_error(tmp_path):
    """torch's writer says "unexpected pos" when a write comes up short; atomic_path makes that a WriteError only when
    the disk is the cause (a file-size limit reached, no room left): with room, the error stays what it was."""
    from workbench.checks import WriteError, atomic_path

    with pytest.raises(RuntimeError, match="unexpected pos 704 vs 598") as err, atomic_path(tmp_path / "f.pt") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert not isinstance(err.value, WriteError) and list(tmp_path.iterdir()) == []


def test_event_features_round_trip(tmp_path):
    from workbench.data import EventFeatures

    f = _feats()
    back = EventFeatures.load(f.save(tmp_path / "feats.pt"))
    assert torch.equal(back.features["video"], f.features["video"]) and back.classes == f.classes
    assert [p.name for p in tmp_path.iterdir()] == ["feats.pt"]


def test_checked_fields_keep_valid_values():
    """Valid values pass unchanged (lists become tuples, numpy scalars Python ones); every default is valid."""
    from workbench.checks import check_value

    cfg = TrainConfig(betas=[0.9, 0.99], lr=np.float32(0.5), grad_clip=None, compile="eager")
    assert cfg.betas == (0.9, 0.99) and type(cfg.lr) is float and cfg.grad_clip is None
    assert ModeApproxConfig(towers="vision", train="head").towers == ("vision",)
    assert check_value(TrainConfig, "steps", np.int64(3)) == 3
    for make in (TrainConfig, ModeApproxConfig, CB, MOD, HEAD, FT, MASK, PRE):
        make()
    assert CB(quantizer="fsq", codes=1000, fsq_levels=(8, 5, 5, 5)).n_codes == 1000


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
