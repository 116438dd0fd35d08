"""The modular model's invariants (issue 11): temporal modules start as the identity, k = 0 is the dual
encoder, every valid path runs and an invalid one is refused, universal layers are one parameter
object for both modalities, same seed same numbers, and bad input named."""
import pytest
import torch

from workbench.methods.modular import (
    TASKS,
    ModularConfig,
    ModularModel,
    Multiway,
    module_flops,
    valid_paths,
)
from workbench.models import TINY_NAME, load_model


@pytest.fixture(scope="module")
def backend():
    torch.set_num_threads(1)
    return load_model(TINY_NAME)


@pytest.fixture(scope="module")
def data(world):
    scenes = world.batch("novel_train", range(3))
    clips = world.clips("novel_train", range(3), frames=3)
    return {"images": scenes.images, "clips": clips.frames, "captions": list(scenes.captions),
            "clip_captions": list(clips.captions)}


def build(backend, **kw) -> ModularModel:
    return ModularModel.from_backend(backend.copy(), ModularConfig(**kw)).eval()


@pytest.fixture(scope="module")
def model(backend):
    return build(backend, shared_layers=2, latents=4)


def batch_for(model, data, task, path):
    """A batch for `task` along `path`: clips where the path has temporal modules or the task is video."""
    spec = TASKS[task]
    clips = "temporal" in path or spec.inputs[0] == "clips"
    out = {"clips": data["clips"]} if clips else {"images": data["images"]}
    tokens = model.tokenize(data["clip_captions"] if clips else data["captions"])
    if "text" in spec.inputs:
        out["text"] = tokens
    if task == "captioning":
        out["targets"] = tokens
    if task in ("classification", "qa"):
        out["targets"] = torch.tensor([0, 1, 2])
    return out


def test_identical_frames_with_zero_initialised_temporal_modules_give_the_image_tokens(model, data):
    image = data["images"][:2]
    clip = image[:, None].expand(-1, 4, -1, -1, -1).contiguous()  # (2, 4, 3, S, S), every frame the same
    with torch.no_grad():
        img_tokens = model.vision.tokens(image)
        frames = model.vision.frame_tokens(clip, temporal=True)
        clip_tokens = model.vision.tokens(clip, temporal=True)
    for t in range(4):
        torch.testing.assert_close(frames[:, t], img_tokens, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(clip_tokens, img_tokens, rtol=1e-5, atol=1e-5)
    # the check can fail: once the last projection is not zero, the tokens move
    moved = build(load_model(TINY_NAME), shared_layers=0)
    with torch.no_grad():
        for pair in moved.vision.temporal:
            for m in pair:
                m.up.weight.normal_(0, 0.05)
        assert (moved.vision.tokens(clip, temporal=True) - img_tokens).abs().max() > 1e-3


def test_last_projection_of_every_temporal_module_is_zero(model):
    for pair in model.vision.temporal:
        for m in pair:
            assert torch.count_nonzero(m.up.weight) == 0 and torch.count_nonzero(m.up.bias) == 0
            assert m.down.out_features == model.vision.width // 2 and m.conv.kernel_size == (3,)
            assert m.conv.groups == m.conv.in_channels  # depthwise


def test_k0_equals_the_dual_encoder(backend, data):
    m = build(backend, shared_layers=0)
    tokens = m.tokenize(data["captions"])
    with torch.no_grad():
        out = m.run("image_retrieval", {"images": data["images"], "text": tokens})
        img = backend.encode_image(data["images"], normalize=True)
        txt = backend.encode_text(tokens, normalize=True)
    torch.testing.assert_close(out.embeddings["image"], img, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.embeddings["text"], txt, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.logits, backend.logit_scale.exp() * img @ txt.T, rtol=1e-4, atol=1e-4)
    assert m.universal.depth == 0


def test_universal_layers_change_vision_only_and_start_from_the_dual_encoder(model, backend, data):
    batch = {"images": data["images"], "text": model.tokenize(data["captions"])}
    with torch.no_grad():
        base = model.run("image_retrieval", batch)  # back projection zero at init: the dual encoder
        torch.testing.assert_close(base.embeddings["image"], backend.encode_image(data["images"], normalize=True),
                                   rtol=1e-5, atol=1e-6)
        trained = build(backend, shared_layers=2, latents=4)
        trained.universal.back.weight.normal_(0, 0.1)
        moved = trained.run("image_retrieval", batch)
        plain = trained.run("image_retrieval", batch, path=("vision", "text"))
    assert (moved.embeddings["image"] - base.embeddings["image"]).abs().max() > 1e-3
    torch.testing.assert_close(moved.embeddings["text"], base.embeddings["text"])  # text runs its own tower
    torch.testing.assert_close(plain.embeddings["image"], base.embeddings["image"])  # path without universal


def test_universal_layers_are_one_parameter_object_for_both_modalities(model, data):
    k, depth = model.shared_layers, model.text.depth
    assert k == 2
    for i in range(k):
        assert model.universal.blocks[i] is model.text.blocks[depth - k + i]
    shared = model.universal.blocks[0].attn.in_proj_weight
    ids = {id(p) for p in model.parameters()}
    assert id(shared) in ids and len(ids) == len(list(model.parameters()))
    # both modalities' gradients land on that one tensor
    model.zero_grad()
    model.universal.back.weight.data.normal_(0, 0.1)  # open the residual so vision reaches the shared weights
    try:
        out = model.run("image_retrieval", {"images": data["images"], "text": model.tokenize(data["captions"])})
        out.embeddings["image"].sum().backward(retain_graph=True)
        g_vision = shared.grad.clone()
        model.zero_grad()
        out.embeddings["text"].sum().backward()
        g_text = shared.grad.clone()
    finally:
        model.universal.back.weight.data.zero_()
        model.zero_grad()
    assert g_vision.abs().sum() > 0 and g_text.abs().sum() > 0


@pytest.mark.parametrize("task", list(TASKS))
def test_every_valid_path_runs_and_an_invalid_one_is_refused(model, data, task):
    paths = valid_paths(task)
    assert paths[0] == TASKS[task].path and len(paths) == len(set(paths)) >= 2
    for path in paths:
        with torch.no_grad():
            out = model.run(task, batch_for(model, data, task, path), path)
        assert out.path == path and out.logits is not None and torch.isfinite(out.logits).all()
        assert out.loss is not None and torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="does not connect.*valid paths: " + " -> ".join(paths[0])):
        model.run(task, batch_for(model, data, task, paths[0]), ("decoder", "vision"))


def test_unknown_task_module_and_path_are_named(model, data):
    batch = batch_for(model, data, "image_retrieval", ("vision", "text"))
    with pytest.raises(ValueError, match="unknown task 'retrieval'.*'image_retrieval'"):
        model.run("retrieval", batch)
    with pytest.raises(ValueError, match="unknown module 'audio'.*vision, temporal"):
        model.run("image_retrieval", batch, ("vision", "audio"))
    with pytest.raises(ValueError, match="unknown module 'audio'; accepted"):
        model.module("audio")
    with pytest.raises(ValueError, match="unknown task"):
        valid_paths("nope")
    with pytest.raises(ValueError, match="a tuple of module names"):
        model.run("image_retrieval", batch, "vision")


def test_k_larger_than_the_text_depth_raises(backend):
    with pytest.raises(ValueError, match="shared_layers=4 but the text encoder has 3 layers; accepted: 0 ... 3"):
        build(backend, shared_layers=4)
    with pytest.raises(ValueError, match="shared_layers=-1"):
        ModularConfig(shared_layers=-1)
    assert build(backend, shared_layers="all").universal.depth == 3


def test_one_frame_clips_and_images_are_refused_by_temporal_paths(model, data):
    tokens = model.tokenize(data["clip_captions"])
    with pytest.raises(ValueError, match="1 frame.*T >= 2"):
        model.run("video_retrieval", {"clips": data["clips"][:, :1], "text": tokens})
    with pytest.raises(ValueError, match="'temporal', which needs clips"):
        model.run("classification", {"images": data["images"]}, ("vision", "temporal"))
    one = model.run("video_retrieval", {"clips": data["clips"][:, :1], "text": tokens}, ("vision", "text"))
    assert one.embeddings["video"].shape == (3, 128)  # a frame mean works on one frame


def test_bad_batches_are_named(model, data):
    with pytest.raises(ValueError, match="takes images.*the batch has clips"):
        model.run("image_retrieval", {"clips": data["clips"], "text": model.tokenize(data["captions"])})
    with pytest.raises(ValueError, match="unknown batch key 'image'"):
        model.run("classification", {"image": data["images"]})
    with pytest.raises(ValueError, match=r"values in \[0, 255\]|0-255"):
        model.run("classification", {"images": data["images"] * 255})
    with pytest.raises(ValueError, match="needs batch\\['text'\\]"):
        model.run("qa", {"clips": data["clips"]})
    with pytest.raises(ValueError, match="targets must be class indices"):
        model.run("classification", {"images": data["images"], "targets": torch.zeros(3)})
    with pytest.raises(ValueError, match="captioning needs batch\\['targets'\\]"):
        model.run("captioning", {"images": data["images"]}, ("vision", "universal", "decoder"))
    with pytest.raises(ValueError, match="was built with temporal=False"):
        m = ModularModel.from_backend(load_model(TINY_NAME), ModularConfig(temporal=False))
        m.run("classification", {"clips": data["clips"]}, ("vision", "temporal"))


def test_decoder_does_not_read_the_fused_texts_padding(backend, data):
    """Memory positions marked as padding change nothing the decoder computes; unmarked ones do."""
    m = build(backend).eval()
    torch.manual_seed(0)
    memory = torch.randn(2, 6, m.text.width)
    padding = torch.tensor([[False, False, True, True, False, False]] * 2)
    tokens = torch.full((2, 1), m.start_id, dtype=torch.long)
    changed = memory.clone()
    changed[:, 2:4] += 5.0
    with torch.no_grad():
        out = m.decoder(tokens, memory, padding)
        torch.testing.assert_close(m.decoder(tokens, changed, padding), out)
        assert not torch.allclose(m.decoder(tokens, changed), m.decoder(tokens, memory))


def test_decoder_vocabulary_subset_and_generation(backend, data):
    tokens_list = backend.tokenize(data["captions"])
    m = build(backend, vocab=tuple(int(t) for t in tokens_list.unique()))
    assert m.decoder.vocab_size == len(set(tokens_list.unique().tolist()) | {0, m.start_id, m.end_id})
    out = m.run("captioning", {"images": data["images"], "targets": tokens_list}, ("vision", "universal", "decoder"))
    assert out.logits.shape == (3, tokens_list.shape[1] - 1, m.decoder.vocab_size)
    gen = m.generate({"images": data["images"]}, ("vision", "universal", "decoder"), length=6)
    assert gen.shape == (3, 6) and bool((gen[:, 0] == m.start_id).all())
    assert set(gen.flatten().tolist()) <= set(m.decoder.vocab_ids.tolist())
    with pytest.raises(ValueError, match="outside the decoder's vocabulary"):
        m.run("captioning", {"images": data["images"], "targets": backend.tokenize(["a zebra xylophone"] * 3)},
              ("vision", "universal", "decoder"))


def test_same_seed_same_numbers_other_seed_other_numbers(backend, data):
    def outputs(seed):
        m = build(backend, seed=seed, latents=4)
        with torch.no_grad():
            m.universal.back.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(5))
            qa = m.run("qa", batch_for(m, data, "qa", TASKS["qa"].path))
            ret = m.run("image_retrieval", batch_for(m, data, "image_retrieval", TASKS["image_retrieval"].path))
        return qa.logits, ret.embeddings["image"]

    a, b, c = outputs(0), outputs(0), outputs(1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_token_routing_keeps_attention_shared_and_routes_per_token(backend, data):
    m = build(backend, shared_layers=2, latents=4, routing="token")
    r = m.universal.routed[0]
    assert r.ln_1.copies[0] is m.universal.blocks[0].ln_1 and r.ln_1.copies[1] is not r.ln_1.copies[0]
    path_model = build(backend, shared_layers=2, latents=4)
    batch = batch_for(m, data, "image_retrieval", ("vision", "universal", "text"))
    with torch.no_grad():
        for mm in (m, path_model):
            mm.universal.back.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(3))
        a, b = m.run("image_retrieval", batch), path_model.run("image_retrieval", batch)
        torch.testing.assert_close(a.embeddings["text"], b.embeddings["text"])
        torch.testing.assert_close(a.embeddings["image"], b.embeddings["image"])  # copies start equal
        r.ln_1.copies[1].bias.add_(0.5)  # block 0's vision LayerNorm (it normalises the visual keys): only vision moves
        c = m.run("image_retrieval", batch)
    torch.testing.assert_close(c.embeddings["text"], a.embeddings["text"])
    assert (c.embeddings["image"] - a.embeddings["image"]).abs().max() > 1e-4


def test_multiway_sends_each_token_to_its_copy():
    torch.manual_seed(0)
    mw = Multiway.of(torch.nn.Linear(4, 3))
    x = torch.randn(2, 5, 4)
    ids = torch.tensor([[0, 1, 0, 1, 1], [1, 1, 0, 0, 0]])
    mw.copies[1].weight.data.mul_(2)
    out = mw(x, ids)
    for b in range(2):
        for t in range(5):
            torch.testing.assert_close(out[b, t], mw.copies[int(ids[b, t])](x[b, t]))
    with pytest.raises(ValueError, match="modality ids have shape"):
        mw(x, ids[:, :3])
    with pytest.raises(ValueError, match=r"modality ids \[-1, 2\]; accepted: 0 ... 1 \(text, vision\)"):
        mw(x, torch.tensor([[0, 2, 0, 1, 1], [1, -1, 0, 0, 2]]))
    same = torch.ones_like(ids)  # one modality only: its copy on the sequence as it is
    torch.testing.assert_close(mw(x, same), mw.copies[1](x))
    with pytest.raises(ValueError, match="modality='audio'"):
        mw.select("audio")


def test_module_flops_count_what_a_path_adds(model, data):
    clip_batch = batch_for(model, data, "video_retrieval", TASKS["video_retrieval"].path)
    full = module_flops(model, "video_retrieval", None, clip_batch)
    no_temporal = module_flops(model, "video_retrieval", ("vision", "universal", "text"), clip_batch)
    plain = module_flops(model, "video_retrieval", ("vision", "text"), clip_batch)
    assert full > no_temporal > plain > 0
    with torch.no_grad():  # an outer no_grad changes nothing
        assert module_flops(model, "video_retrieval", None, clip_batch) == full
    cap = batch_for(model, data, "captioning", ("vision", "universal", "decoder"))
    assert module_flops(model, "captioning", ("vision", "universal", "text", "fusion", "decoder"), cap) > \
        module_flops(model, "captioning", ("vision", "universal", "decoder"), cap)


def test_temporal_conv_equals_the_depthwise_conv1d_it_computes():
    from workbench.methods.modular import TemporalModule

    torch.manual_seed(0)
    m = TemporalModule(16)
    for frames in (2, 3, 8):
        h = torch.randn(2, frames, 5, 8)
        torch.testing.assert_close(m.temporal_conv(h), m.conv_reference(h), rtol=1e-5, atol=1e-6)
    # the order of frames matters once the module is trained: reversing a clip changes its update
    m.up.weight.data.normal_()
    x = torch.randn(2 * 4, 5, 16)
    rev = x.view(2, 4, 5, 16).flip(1).reshape(8, 5, 16)
    assert not torch.allclose(m(x, 4).view(2, 4, 5, 16).mean(1), m(rev, 4).view(2, 4, 5, 16).mean(1), atol=1e-4)
