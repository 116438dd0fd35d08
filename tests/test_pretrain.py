import json
import os
import subprocess
import sys
from pathlib import Path

import open_clip
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


_RUN = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_pretrain import SMALL
from workbench.pretrain import PretrainConfig, pretrain
torch.set_num_threads(1)
pretrain(PretrainConfig(steps=2, batch_size=8, eval_n=10, model_cfg=SMALL), sys.argv[1], progress=False)
"""


def test_same_seed_same_weights(tmp_path):
    """Rerunning the recipe with the same seed writes the same bytes (fresh process, one thread).

    Each run is its own process, as a user's rerun is. Two runs inside one process are not
    bit-identical: weights differed in the last bits (seen as +-0 in fp16) on every other run,
    which points at numerics that depend on where the allocator placed the buffers.
    """
    code = _RUN.format(tests=str(Path(__file__).parent))
    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, capture_output=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    a, b = (_contents(tmp_path / name / "open_clip_model.safetensors") for name in ("a", "b"))
    assert a[0] == b[0]  # the metadata
    assert a[1].keys() == b[1].keys() and all(a[1][k] == b[1][k] for k in a[1])  # every tensor, bit for bit


def _contents(path: Path) -> tuple[dict, dict[str, bytes]]:
    """(metadata, name -> raw bytes of the tensor): the file's content without the header's key order
    (safetensors writes its metadata map in an order that can differ between processes)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {k: f.get_tensor(k).contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                              for k in f.keys()}
