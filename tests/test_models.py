import json

import open_clip
import pytest
import torch

from workbench.models import TINY_DIR, TINY_MODEL_CFG, TINY_NAME, ImageClassifier, load_model, load_open_clip_dir
from workbench.world import zero_shot_templates


def _exercise(model, n_images=2):
    """Drive a backend through the whole interface; return (image, text) features."""
    S = model.image_size
    images = torch.rand(n_images, 3, S, S, generator=torch.Generator().manual_seed(0))
    tokens = model.tokenize(["a photo of a star.", "a red circle on grass."])
    with torch.no_grad():
        img = model.encode_image(images)
        txt = model.encode_text(tokens)
        img_n, txt_n, scale = model(images, tokens)
    assert img.shape == (n_images, model.embed_dim) and txt.shape == (2, model.embed_dim)
    assert torch.allclose(img_n.norm(dim=-1), torch.ones(n_images), atol=1e-5)
    assert torch.allclose(txt_n, torch.nn.functional.normalize(txt, dim=-1), atol=1e-5)
    assert scale > 0
    assert len(model.vision_blocks) > 0 and len(model.text_blocks) > 0
    assert len(model.attention_modules()) == len(model.vision_blocks) + len(model.text_blocks)
    assert model.grid_size * model.patch_size == S
    head = model.zero_shot_head(["star", "circle", "heart"], zero_shot_templates())
    assert head.weight.shape == (3, model.embed_dim)
    clf = ImageClassifier(model, head)
    with torch.no_grad():
        logits = clf(images)
    assert logits.shape == (n_images, 3) and torch.isfinite(logits).all()
    # tokens through blocks: batch-first (B, 1 + N, width)
    seen = {}
    h = model.vision_blocks[-1].register_forward_hook(lambda m, i, o: seen.setdefault("x", o))
    with torch.no_grad():
        model.encode_image(images)
    h.remove()
    out = seen["x"][0] if isinstance(seen["x"], tuple) else seen["x"]
    assert out.shape[:2] == (n_images, 1 + model.grid_size ** 2)
    return img, txt


def test_tiny_random_through_interface(tiny_random):
    _exercise(tiny_random)
    with pytest.raises(ValueError, match="64x64"):
        tiny_random.encode_image(torch.rand(1, 3, 32, 32))
    assert tiny_random.resize(torch.rand(1, 3, 32, 32)).shape[-1] == 64


@pytest.mark.slow
def test_vit_b_32_random_init_through_interface():
    model = load_model("ViT-B-32", pretrained=None)
    assert model.image_size == 224 and model.grid_size == 7 and model.kind == "open_clip"
    _exercise(model, n_images=1)


def test_hf_clip_from_config_through_interface(tiny_hf_config):
    model = load_model(tiny_hf_config)
    assert model.kind == "hf_clip" and model.image_size == 32
    _exercise(model)


def test_hf_clip_from_local_folder(tmp_path, tiny_hf_config):
    model = load_model(tiny_hf_config)
    model.model.save_pretrained(tmp_path / "hf")
    again = load_model(f"hf:{tmp_path / 'hf'}")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), again.encode_image(x), atol=1e-6)


def test_open_clip_local_weight_file(tmp_path):
    torch.manual_seed(0)
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1,
                                            "head_width": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    net = open_clip.model.CLIP(**cfg)
    from safetensors.torch import save_file

    folder = tmp_path / "mini"
    folder.mkdir()
    save_file(net.state_dict(), str(folder / "open_clip_model.safetensors"))
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    model = load_model(f"local-dir:{folder}")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = net.encode_image((x - model.pixel_mean) / model.pixel_std)
        assert torch.allclose(model.encode_image(x), ref, atol=1e-6)


def test_unknown_model_name_lists_what_is_accepted():
    with pytest.raises(ValueError, match="unknown model 'ViT-B-33'.*tiny-world-clip"):
        load_model("ViT-B-33")


def test_unknown_pretrained_tag_is_named():
    with pytest.raises(ValueError, match="pretrained='not-a-tag'"):
        load_model("ViT-B-32", pretrained="not-a-tag")


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="open_clip_config.json"):
        load_open_clip_dir(tmp_path, name="x")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_MODEL_CFG}))
    with pytest.raises(FileNotFoundError, match="safetensors"):
        load_open_clip_dir(tmp_path, name="x")
    bad = tmp_path / "open_clip_model.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_open_clip_dir(tmp_path, name="x")
    assert bad.read_bytes() == b"not a safetensors file at all"  # nothing written is lost


def test_embedded_tiny_model_loads_offline_and_is_small():
    files = {p.name: p.stat().st_size for p in TINY_DIR.iterdir()}
    assert files["open_clip_model.safetensors"] <= 20 * 2 ** 20
    model = load_model(TINY_NAME)
    assert model.image_size == 64 and model.name == TINY_NAME
    # plain open_clip loads the same folder
    net, _, _ = open_clip.create_model_and_transforms(f"local-dir:{TINY_DIR}")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net.encode_image(model.normalize_pixels(x)), model.encode_image(x), atol=1e-5)


def test_head_rejects_unknown_class(tiny_random):
    head = tiny_random.zero_shot_head(["star", "circle"], zero_shot_templates())
    with pytest.raises(KeyError, match="'cow'.*star, circle"):
        head.class_index("cow")
    with pytest.raises(ValueError):
        tiny_random.zero_shot_head("star", zero_shot_templates())
    with pytest.raises(ValueError, match="templates"):
        tiny_random.zero_shot_head(["star"], [])
    head = tiny_random.zero_shot_head(["star", "circle"], ["a photo of a {}."])  # any prompts, no world
    assert head.templates == ("a photo of a {}.",) and head.weight.shape == (2, tiny_random.embed_dim)


@pytest.mark.parametrize("which", ["open_clip", "hf"])
def test_backends_own_their_knowledge(which, tiny_random, tiny_hf_config):
    """Towers, tokenizer, layers by role, block parts, projections and copies come from the backend."""
    model = tiny_random if which == "open_clip" else load_model(tiny_hf_config)
    assert model.tokenize(["a star."]).shape[0] == 1 and model.tokenizer is not None
    params = dict(model.model.named_parameters())
    vision, text = model.tower_parameters("vision"), model.tower_parameters("text")
    ids = {id(p) for p in vision} | {id(p) for p in text}
    assert {n for n, p in params.items() if id(p) not in ids} == {"logit_scale"}
    assert {id(p) for m in model.tower_modules("vision") for p in m.parameters()} == {id(p) for p in vision}
    assert all(model.tower_of(n) == "vision" for n, p in params.items() if any(p is q for q in vision))
    attn = model.adaptable_layers("attn")
    assert len(attn) == len(model.vision_blocks) + len(model.text_blocks) == len(model.attention_modules())
    assert model.vision_attention == [model.block_attention(b) for b in model.vision_blocks]
    assert all(m in attn.values() for m in model.vision_attention)
    assert len(model.adaptable_layers("attn", towers=("vision",))) == len(model.vision_blocks)
    mlp = model.adaptable_layers("mlp")
    assert len(mlp) == 2 * len(attn) and all(isinstance(m, torch.nn.Linear) for m in mlp.values())
    assert set(model.matrix_kinds.values()) <= {"q", "k", "v", "out", "fc1", "fc2"}
    assert all(n.rsplit(".", 1)[-1] in model.matrix_kinds for n in mlp)
    assert model.lora_targets and set(model.linear_targets) >= {n.rsplit(".", 1)[-1] for n in mlp}
    assert isinstance(model.block_attention_input(model.vision_blocks[-1]), torch.nn.LayerNorm)
    named = dict(model.model.named_parameters()) | dict(model.model.named_modules())
    assert all(n in named for n in model.projection_names) and len(model.projection_names) == 2
    with pytest.raises(ValueError, match="role"):
        model.adaptable_layers("conv")
    copy = model.copy()
    assert copy is not model and copy.tokenizer is model.tokenizer  # the tokenizer is shared ...
    pairs = zip(copy.parameters(), model.parameters())
    assert all(a is not b and torch.equal(a, b) for a, b in pairs)  # ... weights not
    assert type(copy) is type(model)


def test_zero_shot_and_models_know_nothing_of_the_world_or_methods():
    import ast
    from pathlib import Path

    import workbench.models as models

    for file in Path(models.__file__).parent.glob("*.py"):
        tree = ast.parse(file.read_text())
        names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        bad = [m for m in names if m.startswith(("workbench.world", "workbench.methods", "workbench.eval",
                                                 "workbench.viz", "workbench.studies", "workbench.data"))]
        assert not bad, f"{file.name} imports {bad}"


def test_parameter_counts_count_shared_tensors_once():
    from workbench.models import count_all, count_trainable, eval_mode

    shared = torch.nn.Linear(3, 3)
    net = torch.nn.Sequential(shared, torch.nn.Sequential(shared), torch.nn.Linear(3, 1))
    net[2].requires_grad_(False)
    assert count_all(net) == 12 + 4 and count_trainable(net) == 12
    net[1].eval()
    with pytest.raises(RuntimeError), eval_mode(net):
        assert not any(m.training for m in net.modules())
        raise RuntimeError("boom")
    assert net.training and not net[1].training and net[2].training  # every flag back, also on error
