"""Uni-Code as the authors' code computes it (haihuangcode/CMG): L_cmcm, Cross-CPC with one predictor per source,
disjoint reset windows and the every-modality rule, gradient clipping, CLUB's q-network, the plain-VQ row,
per-loss gradient norms, exact nearest-code search. Names added by this work are imported inside the tests."""
import itertools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.methods.codebook import CLUB, VARIANTS, CodebookConfig, CrossCPC, EMACodebook, UniCode, train_unicode

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest


SHAPES = {"video": (6,), "audio": (5,)}


def tiny_cfg(**kw) -> CodebookConfig:
    base = dict(dim=8, codes=8, specific_dim=8, club_hidden=16, layers=1, heads=2, reset_after=30, encoder="mlp")
    return CodebookConfig(**{**base, **kw})


def tiny_variant(name: str, **kw) -> CodebookConfig:
    """A named variant on tiny_cfg's sizes (the variant's own fields win)."""
    small = {k: v for k, v in tiny_cfg(**kw).__dict__.items() if k not in VARIANTS[name]}
    return CodebookConfig.variant(name, **small)


def tiny_data(n: int = 12, t: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(n, t, *s, generator=g) for m, s in SHAPES.items()}


# ---------------------------------------------------------------- L_cmcm

def _authors_cmcm(z: dict, book: list[list[float]]) -> float:
    """The authors' L_cmcm written out in plain Python, step by step, from main_model_2.py's formulas."""
    def soft(seqs):  # per sequence: mean over steps of softmax(-euclidean distance to every code)
        out = []
        for steps in seqs:
            acc = [0.0] * len(book)
            for x in steps:
                d = [math.sqrt(sum((xi - ei) ** 2 for xi, ei in zip(x, e))) for e in book]
                w = [math.exp(-v) for v in d]
                for k in range(len(book)):
                    acc[k] += w[k] / sum(w) / len(steps)
            out.append(acc)
        return out

    p = {m: soft(v) for m, v in z.items()}
    total = 0.0
    for a, b in itertools.combinations(list(z), 2):
        pa, pb, n = p[a], p[b], len(p[a])
        s = [[sum(pa[i][k] * math.log(pb[j][k] + 1e-10) + pb[i][k] * math.log(pa[j][k] + 1e-10)
                  for k in range(len(book))) for j in range(n)] for i in range(n)]
        shift = max(-v for row in s for v in row)  # torch.max(-Scode)
        e = [[math.exp(v + shift) for v in row] for row in s]
        total += -sum(math.log(e[i][i] / (sum(e[i]) + 1e-5)) for i in range(n)) / n
    return 0.5 * total


def test_cmcm_matches_the_authors_formula_on_a_hand_made_example():
    from workbench.methods.codebook import cmcm_loss

    book = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]
    z = {"audio": [[[0.1, 0.0], [0.9, 0.2]], [[0.0, 1.5], [0.2, 1.9]], [[1.0, 1.0], [0.5, 0.0]]],
         "video": [[[0.0, 0.3], [1.2, 0.0]], [[0.1, 2.2], [0.0, 1.0]], [[0.8, 0.1], [0.6, 0.9]]],
         "text": [[[0.4, 0.4], [1.0, 0.1]], [[0.3, 1.7], [0.0, 0.5]], [[0.9, 0.0], [0.2, 0.3]]]}
    zt = {m: torch.tensor(v, dtype=torch.float64) for m, v in z.items()}
    books = {m: torch.tensor(book, dtype=torch.float64) for m in z}
    two = {m: z[m] for m in ("audio", "video")}
    got2 = cmcm_loss({m: zt[m] for m in two}, books)
    assert float(got2) == pytest.approx(_authors_cmcm(two, book), rel=1e-10)
    got3 = cmcm_loss(zt, books)  # 0.5 * (L_av + L_at + L_tv)
    assert float(got3) == pytest.approx(_authors_cmcm(z, book), rel=1e-10)
    # the three-modality term is the sum of the pair terms
    pairs = sum(float(cmcm_loss({a: zt[a], b: zt[b]}, books)) for a, b in itertools.combinations(z, 2))
    assert float(got3) == pytest.approx(pairs, rel=1e-12)
    # matched sequences give a smaller loss than the same sequences shuffled across the batch
    shuffled = dict(zt, video=zt["video"][[1, 2, 0]])
    assert float(cmcm_loss({"audio": zt["audio"], "video": zt["audio"]}, books)) < float(
        cmcm_loss({"audio": zt["audio"], "video": shuffled["audio"][[1, 2, 0]]}, books))


def test_cmcm_is_in_the_model_loss_with_gradient_on_the_semantic_encoders_and_switchable():
    from workbench.methods.codebook import cmcm_loss

    assert CodebookConfig().cmcm is True and VARIANTS["no_cmcm"] == {"cmcm": False}
    data = tiny_data()
    model = UniCode(tiny_cfg(), SHAPES, seed=0).train()  # mlp encoders: no dropout, so z is reproducible
    books = {m: model.codebook(m).clone() for m in SHAPES}
    losses = model.step(data)
    assert not torch.equal(model.codebook(), books["video"])  # the step updated the codebook ...
    with torch.no_grad():  # ... and L_cmcm used the codebook from before the update, as the authors
        expect = cmcm_loss(model.semantic(data), books, model.cfg.eps)
    torch.testing.assert_close(losses.cmcm, expect)
    parts = losses.recon + losses.commitment + losses.club + losses.cpc + losses.infonce + losses.cmcm
    torch.testing.assert_close(losses.total, parts)
    grads = torch.autograd.grad(losses.cmcm, list(model.semantic_encoders.parameters()))
    assert sum(float(g.norm()) for g in grads) > 0
    off = UniCode(tiny_variant("no_cmcm"), SHAPES, seed=0)
    assert float(off.step(data).cmcm) == 0.0


# ---------------------------------------------------------------- Cross-CPC

def _pair_loss(cpc: CrossCPC, z: dict, pair_predictors: dict) -> torch.Tensor:
    """The old design, for contrast: a predictor per (source, target) pair, on the module's context LSTMs."""
    total = 0.0
    for a in z:
        ctx, _ = cpc.context[a](z[a])
        for b in z:
            pred = ctx[:, :-1] @ pair_predictors[a, b].t()
            w = cpc.within if a == b else cpc.cross
            total = total + w * _scored(z[b][:, 1:], pred)
    return total


def _scored(future: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mean over steps and sequences of -log softmax over the batch's predictions of the true pairing."""
    out = []
    for t in range(future.shape[1]):
        logits = future[:, t] @ pred[:, t].t()  # rows: true futures; columns: predictions
        out.append(-torch.diagonal(F.log_softmax(logits, dim=1)).mean())
    return torch.stack(out).mean()


def test_cross_cpc_has_one_predictor_per_source_scored_against_every_modality():
    torch.manual_seed(0)
    cpc = CrossCPC(("audio", "video"), 4).double()
    assert len(cpc.predict) == 2 and set(cpc.predict) == {"audio", "video"}
    g = torch.Generator().manual_seed(1)
    z = {m: torch.randn(6, 5, 4, generator=g, dtype=torch.float64) for m in ("audio", "video")}
    expect = 0.0
    for a in z:  # one prediction per source, scored against both futures (weights 1 across, 0.1 within)
        ctx, _ = cpc.context[a](z[a])
        pred = cpc.predict[a](ctx[:, :-1])
        for b in z:
            expect = expect + (0.1 if a == b else 1.0) * _scored(z[b][:, 1:], pred)
    torch.testing.assert_close(cpc(z), expect)


def test_cross_cpc_is_not_blind_to_an_invertible_map_of_one_modality():
    """Map video's features by an invertible M and fold M^-1 into video's LSTM input weights (its context is
    then unchanged). A per-pair design also folds M^-T into its predictors towards video and gives the very
    same loss: it cannot tell aligned from misaligned spaces. With one predictor per source, audio's single
    predictor must serve audio's and video's futures alike, and video's its own future and audio's, so the
    loss changes (as long as the within-modality terms are on)."""
    torch.manual_seed(0)
    d = 4
    cpc = CrossCPC(("audio", "video"), d).double()
    g = torch.Generator().manual_seed(1)
    z = {m: torch.randn(8, 5, d, generator=g, dtype=torch.float64) for m in ("audio", "video")}
    m_map = torch.eye(d, dtype=torch.float64) + 0.5 * torch.randn(d, d, generator=g, dtype=torch.float64)
    mapped = dict(z, video=z["video"] @ m_map.t())
    folded = CrossCPC(("audio", "video"), d).double()
    folded.load_state_dict(cpc.state_dict())
    with torch.no_grad():
        folded.context["video"].weight_ih_l0.copy_(cpc.context["video"].weight_ih_l0 @ torch.linalg.inv(m_map))
    ctx_before, _ = cpc.context["video"](z["video"])
    ctx_after, _ = folded.context["video"](mapped["video"])
    torch.testing.assert_close(ctx_after, ctx_before)  # the fold is exact

    pairs = {(a, b): torch.randn(d, d, generator=g, dtype=torch.float64) for a in z for b in z}
    pairs_folded = {(a, b): (torch.linalg.inv(m_map).t() @ p if b == "video" else p) for (a, b), p in pairs.items()}
    torch.testing.assert_close(_pair_loss(folded, mapped, pairs_folded), _pair_loss(cpc, z, pairs),
                               atol=1e-12, rtol=0)  # blind: the same loss to rounding

    with torch.no_grad():
        before, after = float(cpc(z)), float(folded(mapped))
    assert abs(after - before) > 1e-5, (before, after)  # float64: far above rounding
    # the best the per-source design can do is fold M^-T into one predictor, which moves the other terms
    for src in ("audio", "video"):
        best = CrossCPC(("audio", "video"), d).double()
        best.load_state_dict(folded.state_dict())
        with torch.no_grad():
            best.predict[src].weight.copy_(torch.linalg.inv(m_map).t() @ folded.predict[src].weight)
            best.predict[src].bias.copy_(torch.linalg.inv(m_map).t() @ folded.predict[src].bias)
        with torch.no_grad():
            assert abs(float(best(mapped)) - before) > 1e-5
    # without the within-modality terms the per-source design is blind too: the authors' 0.1 is what pins it
    cross_only = CrossCPC(("audio", "video"), d, within=0.0).double()
    cross_only.load_state_dict(folded.state_dict())
    with torch.no_grad():
        cross_only.predict["audio"].weight.copy_(torch.linalg.inv(m_map).t() @ folded.predict["audio"].weight)
        cross_only.predict["audio"].bias.copy_(torch.linalg.inv(m_map).t() @ folded.predict["audio"].bias)
    plain = CrossCPC(("audio", "video"), d, within=0.0).double()
    plain.load_state_dict(cpc.state_dict())
    torch.testing.assert_close(cross_only(mapped), plain(z), atol=1e-12, rtol=0)


def test_cross_cpc_context_is_the_authors_two_layer_lstm_in_the_model():
    model = UniCode(tiny_cfg(), SHAPES, seed=0)
    assert model.cfg.cpc_layers == 2
    assert all(lstm.num_layers == 2 and lstm.hidden_size == 8 for lstm in model.cpc.context.values())


# ---------------------------------------------------------------- reset windows and rule

def test_overlapping_reset_windows_are_refused_naming_both_values():
    with pytest.raises(ValueError, match=r"reset_recent \(8\).*reset_after \(8\)"):
        CodebookConfig(reset_after=8, reset_recent=8)
    with pytest.raises(ValueError, match=r"reset_recent \(100\).*reset_after \(8\)"):
        CodebookConfig(reset_after=8, reset_recent=100)
    with pytest.raises(ValueError, match=r"reset_recent \(300\).*reset_after \(300\)"):
        EMACodebook(("audio",), 4, 2, reset_after=300, reset_recent=300)
    # the default scales with reset_after: the authors' 300 / 100, and 8 -> 3 for a short run
    assert CodebookConfig().recent_window == 100 and CodebookConfig(reset_after=8).recent_window == 3
    assert CodebookConfig(reset_after=8, reset_recent=2).recent_window == 2
    assert EMACodebook(("audio",), 4, 2, reset_after=8).reset_recent == 3


def test_reset_never_copies_a_code_unused_longer_than_the_recent_window():
    torch.manual_seed(0)
    k = 12
    cb = EMACodebook(("audio", "video"), k, 2, reset_after=8, reset_noise=0.0).train()  # recent window 3
    rows = torch.stack([torch.tensor([10.0 * i, 0.0]) for i in range(k)])
    with torch.no_grad():
        cb.embedding[0], cb.ema_weight[0], cb.ema_count[0] = rows, rows.clone(), 1.0
        # batches unused so far; the next batch adds 1 (code 0 is used again): recent {0, 1, 2}, stale {3..6},
        # dead {7..11}
        cb.unused[:] = torch.tensor([0, 0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12])
    cb({m: 0.01 * torch.randn(3, 4, 2) for m in ("audio", "video")})
    new = cb.codebook()
    for code in range(7, k):  # each dead code now sits on one of the recent codes
        nearest_old = int((rows - new[code]).norm(dim=1).argmin())
        assert nearest_old in (0, 1, 2), (code, new[code], nearest_old)
        assert float((rows[nearest_old] - new[code]).norm()) < 0.5
    torch.testing.assert_close(new[3:7], rows[3:7], atol=0.05, rtol=0)  # stale codes are left alone
    assert (cb.unused[:, 7:] == 0).all() and (cb.unused[:, 3:7] == torch.tensor([4, 5, 6, 7])).all()


def test_every_rule_resets_a_code_that_one_modality_never_uses():
    assert VARIANTS["reset_every"] == {"reset_rule": "every"}
    assert UniCode(tiny_cfg(reset_rule="every"), SHAPES, seed=0).quantizer.reset_rule == "every"
    rows = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-10.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    audio = torch.cat([0.01 * torch.randn(2, 3, 2, generator=g), rows[1] + 0.01 * torch.randn(2, 3, 2, generator=g)])
    video = 0.01 * torch.randn(4, 3, 2, generator=g)  # video uses code 0 only; audio codes 0 and 1
    after = {}
    for rule in ("any", "every"):
        torch.manual_seed(0)
        cb = EMACodebook(("audio", "video"), 4, 2, reset_after=3, reset_noise=0.0, reset_rule=rule).train()
        with torch.no_grad():
            cb.embedding[0], cb.ema_weight[0], cb.ema_count[0] = rows, rows.clone(), 1.0
        for _ in range(4):  # the 4th batch: video has not used code 1 for 4 > 3 batches
            cb({"audio": audio, "video": video})
        after[rule] = cb.codebook().clone()
    anyr, every = after["any"], after["every"]
    assert float((anyr[1] - anyr[0]).norm()) > 5  # audio keeps code 1 alive under the authors' rule
    torch.testing.assert_close(every[1], every[0])  # re-initialised from code 0, the one both modalities use
    for code in (2, 3):  # unused by everyone: reset under both rules, from a code the rule counts as recent
        torch.testing.assert_close(every[code], every[0])
        assert min(float((anyr[code] - anyr[src]).norm()) for src in (0, 1)) < 1e-6


# ---------------------------------------------------------------- gradient clipping

def test_training_clips_each_parts_gradient_norm_at_the_authors_0_5():
    assert CodebookConfig().grad_clip == 0.5
    data = tiny_data(16, 5)
    norms = {}
    for clip in (0.5, 0.0):
        model = UniCode(tiny_cfg(grad_clip=clip), SHAPES, seed=0)
        seen = []

        def record(step, losses, model=model, seen=seen):
            seen.append({name: float(torch.linalg.vector_norm(
                torch.stack([p.grad.norm() for p in ps if p.grad is not None])))
                for name, ps in model.clip_groups().items()})

        train_unicode(model, data, steps=3, batch_size=8, lr=1e-2, callback=record)
        assert set(seen[0]) == {"encoders", "cpc", "decoders"}
        norms[clip] = seen
    assert max(v for s in norms[0.5] for v in s.values()) <= 0.5 + 1e-5
    assert max(v for s in norms[0.0] for v in s.values()) > 0.5  # without the clip they are larger


# ---------------------------------------------------------------- CLUB

def test_club_q_network_is_the_authors_four_layers_of_half_hidden_width():
    club = CLUB(6, 5, hidden=32)
    for net, tail in ((club.mu, None), (club.logvar, nn.Tanh)):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        assert [(lin.in_features, lin.out_features) for lin in linears] == [(6, 16), (16, 16), (16, 16), (16, 5)]
        assert sum(isinstance(m, nn.ReLU) for m in net) == 3
        assert (tail is None and isinstance(net[-1], nn.Linear)) or isinstance(net[-1], tail)
    with pytest.raises(ValueError, match="club_hidden=1; accepted: an integer >= 2"):
        CodebookConfig(club_hidden=1)


# ---------------------------------------------------------------- the plain-VQ row

def test_plain_vq_is_shared_vq_ema_with_reconstruction_and_commitment_only():
    cfg = tiny_variant("plain_vq")
    model = UniCode(cfg, SHAPES, seed=0).train()
    q = model.quantizer
    assert len(model.clubs) == 0 and model.cpc is None and not cfg.uses_cmcm
    assert q.cross_weight == 0.0 and not q.cross_commit and not q.reset and not q.separate
    losses = model.step(tiny_data())
    assert float(losses.club) == float(losses.cpc) == float(losses.cmcm) == float(losses.infonce) == 0.0
    torch.testing.assert_close(losses.total, losses.recon + losses.commitment)
    # the previous plain_vq (DCID kept, cross-modal codebook terms off) is still there under its own name
    dcid = UniCode(tiny_variant("vq_ema_dcid"), SHAPES, seed=0)
    assert len(dcid.clubs) == 2 and dcid.cpc is not None and not dcid.cfg.uses_cmcm
    assert dcid.quantizer.cross_weight == 0.0 and not dcid.quantizer.reset


# ---------------------------------------------------------------- diagnostics

def test_grad_norms_give_each_loss_terms_pull_on_the_semantic_encoders_without_changing_the_model():
    from workbench.methods.codebook import grad_norms

    data = tiny_data()
    model = UniCode(tiny_cfg(), SHAPES, seed=0).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    club_state = {k: v.clone() for k, v in model.clubs.state_dict().items()}
    rng = torch.get_rng_state()
    norms = grad_norms(model, data)
    assert set(norms) == {"total", "recon", "commitment", "club", "cpc", "infonce", "cmcm"}
    assert norms["infonce"] == 0.0 and all(norms[t] > 0 for t in ("recon", "commitment", "club", "cpc", "cmcm"))
    assert model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, club_state[k]) for k, v in model.clubs.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    # recon's entry is the norm of recon's own gradient, computed the long way
    model.eval()
    model.step(data).recon.backward()
    by_hand = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.semantic_encoders.parameters()]))
    assert norms["recon"] == pytest.approx(float(by_hand), rel=1e-5)


def test_club_specific_only_keeps_the_club_gradient_off_the_semantic_encoders():
    from workbench.methods.codebook import grad_norms

    assert VARIANTS["club_specific_only"] == {"club_detach_semantic": True}
    data = tiny_data()
    full = UniCode(tiny_cfg(), SHAPES, seed=0)
    only = UniCode(tiny_cfg(club_detach_semantic=True), SHAPES, seed=0)
    assert grad_norms(full, data)["club"] > 0 and grad_norms(only, data)["club"] == 0.0
    assert grad_norms(only, data, params=only.specific_encoders.parameters())["club"] > 0


def test_training_records_grad_norms_every_n_steps_without_changing_the_run():
    data = tiny_data(16, 5)
    runs = []
    for every in (0, 2):
        model = UniCode(tiny_cfg(), SHAPES, seed=0)
        runs.append(train_unicode(model, data, steps=4, batch_size=8, seed=0, grad_norm_every=every))
    plain, recorded = runs
    assert plain.grad_norm_steps == [] and recorded.grad_norm_steps == [2, 4]
    assert all(len(v) == 2 for v in recorded.grad_norms.values()) and recorded.grad_norms["cmcm"][0] > 0
    assert plain.losses == recorded.losses
    with pytest.raises(ValueError, match="grad_norm_every"):
        train_unicode(UniCode(tiny_cfg(), SHAPES, seed=0), data, steps=1, grad_norm_every=-1)


# ---------------------------------------------------------------- exact nearest code

def test_nearest_code_ties_go_to_the_lowest_index():
    from workbench.methods.codebook.quantizer import nearest

    book = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5], [-1.0, 0.0], [0.0, 1.0]])
    assert nearest(z, book).tolist() == [0, 0, 0, 3, 1]


def test_nearest_code_is_exact_where_float32_distances_would_tie():
    """Codes 0.49 and 0.25 away from a feature of norm 4096: float32 rounds both squared norms to 2^24, so a
    float32 search sees a tie and picks code 0; float64 sees code 1 is nearer."""
    from workbench.methods.codebook.quantizer import nearest

    z = torch.tensor([[4096.0, 0.0]])
    book = torch.tensor([[4096.0, 0.7], [4096.0, 0.5]])
    assert nearest(z, book).tolist() == [1]
    cb = EMACodebook(("audio",), 2, 2)
    with torch.no_grad():
        cb.embedding[0] = book
    assert cb.lookup({"audio": z[None]})[1]["audio"].tolist() == [[1]]
