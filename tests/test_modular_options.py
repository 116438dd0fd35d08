"""The modular model's options of issue 25: per-module random streams, the capacity-matched control (universal
layers as unshared copies), per-frame tokens, temporal modules on patch tokens only, QA by ranking the
candidate answers with the decoder."""
import pytest
import torch

from workbench.methods.modular import TASKS, ModularConfig, ModularModel, valid_paths
from workbench.methods.modular.model import module_seed
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


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_each_module_starts_from_its_own_stream_whatever_else_is_built(backend):
    """k = 2 builds latents and projections that k = 0 does not; fusion, decoder, bridge, heads and the
    temporal modules still start from the same numbers (they did not when one stream ran in build order)."""
    k0, k2 = build(backend, shared_layers=0, seed=3), build(backend, shared_layers=2, seed=3, latents=4)
    for name in ("fusion", "decoder", "bridge", "heads"):
        a, b = _state(getattr(k0, name)), _state(getattr(k2, name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key}"
    for pa, pb in zip(k0.vision.temporal.parameters(), k2.vision.temporal.parameters()):
        assert torch.equal(pa, pb)
    # the cross-attention of fusion and decoder is drawn (not copied from the text block): a seed moves it
    other = build(backend, shared_layers=0, seed=4)
    assert not torch.equal(k0.fusion.layers[0].multihead_attn.in_proj_weight,
                           other.fusion.layers[0].multihead_attn.in_proj_weight)
    assert module_seed(3, "fusion") != module_seed(3, "decoder") != module_seed(4, "decoder")
    assert module_seed(3, "fusion") == module_seed(3, "fusion")  # a stable hash, not Python's salted one


def test_unshared_universal_layers_have_the_same_count_but_their_own_tensors(backend, data):
    shared = build(backend, shared_layers=2, latents=4, seed=1)
    copies = build(backend, shared_layers=2, latents=4, seed=1, shared_weights=False)
    count = lambda m: sum(p.numel() for p in m.universal.parameters())
    assert count(shared) == count(copies) > 0
    depth = shared.text.depth
    for i in range(2):
        assert shared.universal.blocks[i] is shared.text.blocks[depth - 2 + i]
        assert copies.universal.blocks[i] is not copies.text.blocks[depth - 2 + i]
    text_ptrs = {p.data_ptr() for p in copies.text.parameters()}
    assert not text_ptrs & {p.data_ptr() for p in copies.universal.blocks.parameters()}
    assert {p.data_ptr() for p in shared.universal.blocks.parameters()} <= {p.data_ptr() for p in
                                                                          shared.text.parameters()}
    # the whole model: the copies add exactly the k blocks' parameters
    total = lambda m: sum(p.numel() for p in m.parameters())
    assert total(copies) - total(shared) == sum(p.numel() for p in shared.universal.blocks.parameters())
    batch = {"images": data["images"], "text": shared.tokenize(data["captions"])}
    for m in (shared, copies):
        with torch.no_grad():
            m.universal.back.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():  # copies start equal: the same function at initialisation (same seed, same streams)
        a, b = shared.run("image_retrieval", batch), copies.run("image_retrieval", batch)
    torch.testing.assert_close(a.embeddings["image"], b.embeddings["image"])
    torch.testing.assert_close(a.embeddings["text"], b.embeddings["text"])
    # a text-only loss reaches the universal layers only where they are shared
    for m, reaches in ((shared, True), (copies, False)):
        m.zero_grad()
        m.run("image_retrieval", batch).embeddings["text"].sum().backward()
        g = m.universal.blocks[0].attn.in_proj_weight.grad
        assert (g is not None and g.abs().sum() > 0) == reaches
        m.zero_grad()


def test_temporal_modules_on_patch_tokens_leave_the_cls_token(backend, data):
    m = build(backend, shared_layers=0, temporal_cls=False)
    assert not m.vision.temporal_cls
    module = m.vision.temporal[0][0]
    with torch.no_grad():
        module.up.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        x = torch.randn(2 * 3, 5, m.vision.width, generator=torch.Generator().manual_seed(1))
        out = m.vision._temporal_update(module, x, 3)
        torch.testing.assert_close(out[:, :1], x[:, :1], rtol=0, atol=0)
        torch.testing.assert_close(out[:, 1:], x[:, 1:] + module(x[:, 1:], 3))
        m.vision.temporal_cls = True
        assert (m.vision._temporal_update(module, x, 3)[:, :1] - x[:, :1]).abs().max() > 1e-4
        m.vision.temporal_cls = False
        # zero-initialised: patch-only modules start as the identity as well
        fresh = build(backend, shared_layers=0, temporal_cls=False)
        torch.testing.assert_close(fresh.vision.frame_tokens(data["clips"], temporal=True),
                                   fresh.vision.frame_tokens(data["clips"], temporal=False), rtol=1e-5, atol=1e-5)


def test_frame_tokens_keep_every_frame_for_the_decoder_and_pool_the_time_average(backend, data):
    kw = dict(shared_layers=2, latents=4, seed=2)
    mean, frames = build(backend, **kw), build(backend, frame_tokens=True, **kw)
    clips, t = data["clips"], data["clips"].shape[1]
    path = TASKS["captioning"].path
    with torch.no_grad():
        n = mean._vision_tokens(clips, path).tokens.shape[1]
        per = frames._vision_tokens(clips, path)
        assert per.frames == t and per.tokens.shape[1] == t * n
        assert frames._memory(path, per, None).tokens.shape[1] == t * n
        # at initialisation (temporal modules and back projection zero) the pooled clip embedding is the same
        batch = {"clips": clips, "text": mean.tokenize(data["clip_captions"])}
        a, b = mean.run("video_retrieval", batch), frames.run("video_retrieval", batch)
        torch.testing.assert_close(a.embeddings["video"], b.embeddings["video"], rtol=1e-5, atol=1e-5)
        for task in TASKS:  # every valid path runs with per-frame tokens
            for p in valid_paths(task):
                spec = TASKS[task]
                clip = "temporal" in p or spec.inputs[0] == "clips"
                bt = {"clips": clips} if clip else {"images": data["images"]}
                tokens = frames.tokenize(data["clip_captions"] if clip else data["captions"])
                if "text" in spec.inputs:
                    bt["text"] = tokens
                if task == "captioning":
                    bt["targets"] = tokens
                out = frames.run(task, bt, p)
                assert out.logits is not None and torch.isfinite(out.logits).all()
        assert frames.generate({"clips": clips}, path, length=5).shape == (3, 5)


def test_answer_ranking_is_the_decoders_log_likelihood_of_each_candidate(backend, data):
    words = ("red", "left", "circle")
    vocab = tuple(int(t) for t in backend.tokenize([*words, *data["clip_captions"], "which way"]).unique())
    m = build(backend, shared_layers=2, latents=4, vocab=vocab)
    answers = m.tokenize(list(words))[:, :3]  # start, word, end
    batch = {"clips": data["clips"], "text": m.tokenize(["which way does the object move?"] * 3)}
    with torch.no_grad():
        scores = m.answer_scores(batch, answers)
        assert scores.shape == (3, len(words)) and bool((scores < 0).all())
        for j in range(len(words)):  # the same number from the language-model loss of that answer as text
            target = answers[j:j + 1].expand(3, -1)
            for i in range(3):
                one = {k: v[i:i + 1] for k, v in batch.items()}
                out = m.run("qa", {**one, "targets": target[i:i + 1]})
                assert out.head == "lm"
                torch.testing.assert_close(scores[i, j], -out.loss * (target.shape[1] - 1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="needs the decoder"):
        m.answer_scores(batch, answers, ("vision", "temporal", "universal", "text", "fusion"))
