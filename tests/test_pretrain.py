import json

import open_clip
import pytest
import torch

from workbench.models import load_model
from workbench.pretrain import PretrainConfig, pretrain

SMALL = {"embed_dim": 32,
         "vision_cfg": {"image_size": 64, "patch_size": 16, "width": 32, "layers": 1, "head_width": 16},
         "text_cfg": {"context_length": 20, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def test_recipe_writes_a_loadable_fp16_model(tmp_path):
    cfg = PretrainConfig(steps=3, batch_size=16, eval_n=20, model_cfg=SMALL)
    metrics = pretrain(cfg, tmp_path, progress=False)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["metrics.json", "open_clip_config.json", "open_clip_model.safetensors", "recipe.json"]
    assert set(metrics["zero_shot_accuracy"]) >= {"heldout", "ood_flipped"}
    assert json.loads((tmp_path / "recipe.json").read_text())["steps"] == 3
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(tmp_path / "open_clip_model.safetensors")).values()
               if v.is_floating_point())
    ours = load_model("tiny-world-clip", pretrained=str(tmp_path))
    theirs, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path}")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.encode_image(x), theirs.encode_image(ours.normalize_pixels(x)), atol=1e-5)


@pytest.mark.xfail(strict=False, reason=(
    "known issue, under investigation: two same-seed pretraining runs in one process gave fp16 weights "
    "that differed in about 1 run of 3 under pytest-xdist (engine-level determinism is tested in "
    "test_engine.py and holds)"))
def test_same_seed_same_weights(tmp_path):
    # Bit-identical on CPU for a fixed thread count; we pin one thread (seen under pytest-xdist:
    # two loaded workers with several threads each gave weights that differ in the last bits).
    cfg = PretrainConfig(steps=2, batch_size=8, eval_n=10, model_cfg=SMALL)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pretrain(cfg, tmp_path / "a", progress=False)
        pretrain(cfg, tmp_path / "b", progress=False)
    finally:
        torch.set_num_threads(threads)
    a = (tmp_path / "a" / "open_clip_model.safetensors").read_bytes()
    b = (tmp_path / "b" / "open_clip_model.safetensors").read_bytes()
    assert a == b
