"""Invariants of Uni-Code's codebook: straight-through, EMA / MM-EMA arithmetic, the library match, reset."""
import pytest
import torch

from workbench.methods.codebook import EMACodebook, ema_step

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


def _codebook(modalities=("audio", "video"), codes=6, dim=3, **kw):
    torch.manual_seed(0)
    return EMACodebook(modalities, codes, dim, **kw)


def test_straight_through_output_is_the_codebook_rows_and_passes_gradients_unchanged():
    cb = _codebook().train()
    z = {m: torch.randn(4, 5, 3, requires_grad=True) for m in ("audio", "video")}
    emb_before = cb.codebook().clone()  # the forward quantises with the codebook before its EMA update
    out = cb(z)
    for m in z:
        torch.testing.assert_close(out.quantized[m], emb_before[out.indices[m]], atol=1e-6, rtol=0)
        # nearest code really is the nearest
        d = torch.cdist(z[m].detach().reshape(-1, 3), emb_before)
        assert torch.equal(out.indices[m].reshape(-1), d.argmin(1))
    g = torch.randn(4, 5, 3)
    (out.quantized["audio"] * g).sum().backward()
    torch.testing.assert_close(z["audio"].grad, g)


def test_ema_and_mm_ema_updates_match_a_hand_computed_example():
    count, weight = torch.tensor([1.0, 1.0]), torch.tensor([[0.0], [2.0]])
    own, idx = torch.tensor([[1.0], [3.0], [4.0]]), torch.tensor([0, 1, 1])
    other = torch.tensor([[3.0], [5.0], [6.0]])
    # plain EMA, decay 0.5: count 0.5*[1,1] + 0.5*[1,2]; sum 0.5*[0,2] + 0.5*[1,7]
    plain = ema_step(count, weight, own, idx, [], 1.0, 0.0, decay=0.5, eps=1e-12)
    torch.testing.assert_close(plain.count, torch.tensor([1.0, 1.5]))
    torch.testing.assert_close(plain.weight, torch.tensor([[0.5], [4.5]]))
    torch.testing.assert_close(plain.embedding, torch.tensor([[0.5], [3.0]]))
    # MM-EMA 0.5 / 0.5: sum 0.5*[0,2] + 0.5*(0.5*[1,7] + 0.5*[3,11]); counts from own assignments only
    mm = ema_step(count, weight, own, idx, [other], 0.5, 0.5, decay=0.5, eps=1e-12)
    torch.testing.assert_close(mm.count, plain.count)
    torch.testing.assert_close(mm.weight, torch.tensor([[1.0], [5.5]]))
    torch.testing.assert_close(mm.embedding, torch.tensor([[1.0], [5.5 / 1.5]]))
    # three modalities, authors' 0.5 / 0.25 / 0.25
    third = torch.tensor([[7.0], [1.0], [1.0]])
    mm3 = ema_step(count, weight, own, idx, [other, third], 0.5, 0.25, decay=0.5, eps=1e-12)
    expect = 0.5 * weight + 0.5 * torch.tensor([[0.5 * 1 + 0.25 * 3 + 0.25 * 7], [0.5 * 7 + 0.25 * 11 + 0.25 * 2]])
    torch.testing.assert_close(mm3.weight, expect)


def test_module_uses_the_authors_weights_and_cross_weight_zero_is_plain_ema():
    z = {m: torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(i)) for i, m in
         enumerate(("audio", "video", "text"))}
    for cross, mods in ((0.5, ("audio", "video")), (0.5, ("audio", "video", "text")), (0.0, ("audio", "video"))):
        cb = _codebook(mods, cross_weight=cross, reset=False).train()
        count, weight = cb.ema_count[0].clone(), cb.ema_weight[0].clone()
        emb = cb.codebook().clone()
        zz = {m: z[m] for m in mods}
        cb(zz)
        idx = {m: torch.cdist(x.reshape(-1, 3), emb).argmin(1) for m, x in zz.items()}
        for a in mods:  # by hand: modality after modality
            others = [zz[b].reshape(-1, 3) for b in mods if b != a]
            share = cross / len(others)
            count, weight, new = ema_step(count, weight, zz[a].reshape(-1, 3), idx[a], others if cross else [],
                                          1 - cross, share, 0.99, 1e-5)
        torch.testing.assert_close(cb.codebook(), new)
        if cross == 0.0:  # plain EMA: each modality's own features only
            c, w = torch.zeros(6), _codebook(mods).ema_weight[0].clone()
            for a in mods:
                c, w, plain = ema_step(c, w, zz[a].reshape(-1, 3), idx[a], [], 1.0, 0.0, 0.99, 1e-5)
            torch.testing.assert_close(cb.codebook(), plain)


def test_single_modality_ema_matches_vector_quantize_pytorch():
    from vector_quantize_pytorch import VectorQuantize

    k, d, decay = 8, 4, 0.9
    lib = VectorQuantize(dim=d, codebook_size=k, decay=decay, commitment_weight=1.0, kmeans_init=False,
                         use_cosine_sim=False, threshold_ema_dead_code=0, rotation_trick=False,
                         straight_through=False, stochastic_sample_codes=False).train()
    ours = EMACodebook(("audio",), k, d, decay=decay, commitment=1.0, reset=False).train()
    init = torch.randn(k, d, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lib._codebook.embed[0] = init
        lib._codebook.embed_avg[0] = init
        lib._codebook.cluster_size[0] = 1.0
        ours.embedding[0], ours.ema_weight[0], ours.ema_count[0] = init, init, 1.0
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):
        x = torch.randn(3, 7, d, generator=gen) * 2
        q_lib, i_lib, loss_lib = lib(x.clone())
        out = ours({"audio": x.clone()})
        assert torch.equal(out.indices["audio"], i_lib)
        torch.testing.assert_close(out.quantized["audio"], q_lib)
        torch.testing.assert_close(out.commitment, loss_lib.reshape(()))
        torch.testing.assert_close(ours.codebook(), lib.codebook)


def test_a_code_unused_past_the_threshold_is_reset_near_a_recently_used_one():
    torch.manual_seed(0)
    cb = EMACodebook(("audio", "video"), 4, 2, reset_after=3, reset_recent=2, reset_noise=0.01).train()
    with torch.no_grad():
        cb.embedding[0] = torch.tensor([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0], [5.0, -5.0]])
        cb.ema_weight[0] = cb.embedding[0] * 1.0
        cb.ema_count[0] = 1.0
    x = {m: 0.01 * torch.randn(2, 3, 2) for m in ("audio", "video")}
    for _ in range(3):  # codes 1..3 unused for 3 batches: not yet past the threshold
        cb(x)
    assert (cb.codebook()[1:].norm(dim=1) > 1).all()
    cb(x)  # the 4th unused batch: past reset_after=3
    moved = cb.codebook()[1:] - cb.codebook()[0]
    assert moved.abs().max() <= 0.01 + 1e-6, moved
    assert (cb.unused[0] == 0).all()
    off = EMACodebook(("audio",), 4, 2, reset=False, reset_after=2).train()  # unused 3 > 2: would be dead
    before = off.codebook().clone()
    for _ in range(3):
        off({"audio": before[0].expand(1, 2, 2).clone()})
    assert off.unused[0, 1:].min() == 3  # counted, never reset


@pytest.mark.parametrize("codes,dim", [(0, 4), (4, 0), (-1, 2)])
def test_codebook_rejects_non_positive_sizes(codes, dim):
    with pytest.raises(ValueError, match="positive"):
        EMACodebook(("audio",), codes, dim)


def test_codebook_rejects_an_unknown_modality():
    cb = _codebook(("audio",))
    with pytest.raises(ValueError, match="unknown modality 'smell'"):
        cb({"smell": torch.randn(1, 2, 3)})
