"""UniCode end to end on small synthetic features: training, baselines, usage, transfer, determinism, bad input."""
import math

import pytest
import torch

from workbench.data.event_features import EventFeatures
from workbench.methods.codebook import (
    QUANTIZERS,
    CodebookConfig,
    HeadConfig,
    UniCode,
    code_retrieval,
    code_usage,
    dead_codes,
    feature_alignment,
    perplexity,
    purity,
    restore,
    shared_fraction,
    toc_dimensions,
    toc_scores,
    train_unicode,
    transfer_matrix,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest

C, T = 4, 10
SHAPES = {"video": (2, 2, 16), "audio": (12,)}


def synthetic(n: int, seed: int) -> EventFeatures:
    """Sequences of one event class each (70 % event steps, else background); each modality has its own
    random class prototypes, so only the pairing links video to audio; plus per-sequence nuisance and noise."""
    proto = torch.Generator().manual_seed(123)  # the same prototypes for every split
    pv, pa = torch.randn(C + 1, 16, generator=proto), torch.randn(C + 1, 12, generator=proto)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    event = torch.rand(n, T, generator=g) < 0.7
    steps = torch.where(event, labels[:, None], torch.full((n, T), C))
    video = pv[steps][:, :, None, None, :] + 0.5 * torch.randn(n, 1, 2, 2, 16, generator=g) \
        + 0.5 * torch.randn(n, T, 2, 2, 16, generator=g)
    audio = pa[steps] + 0.5 * torch.randn(n, 1, 12, generator=g) + 0.5 * torch.randn(n, T, 12, generator=g)
    present = {"video": event, "audio": event}
    return EventFeatures({"video": video, "audio": audio}, steps, labels, present, tuple("abcd"))


def small_cfg(**kw) -> CodebookConfig:
    base = dict(dim=32, codes=32, specific_dim=32, club_hidden=32, layers=1, heads=2, reset_after=30,
                reset_recent=10, fsq_levels=(4, 4, 2))
    return CodebookConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return synthetic(240, 0), synthetic(200, 1)


@pytest.fixture(scope="module")
def trained(data):
    train, _ = data
    model = UniCode(small_cfg(), SHAPES, seed=0)
    hist = train_unicode(model, train, steps=60, batch_size=40, lr=1e-3, seed=0, checkpoints=(0, 60))
    return model, hist


def test_full_model_trains_and_video_to_audio_transfer_beats_chance_on_held_out_sequences(data, trained):
    train, test = data
    model, hist = trained
    assert set(hist.losses) == {"total", "recon", "commitment", "club", "cpc", "infonce", "cmcm"}
    assert all(math.isfinite(v) for v in hist.losses["total"])
    assert hist.losses["infonce"][-1] == 0.0 and hist.losses["club"][-1] != 0.0 and hist.losses["cmcm"][-1] > 0
    res = transfer_matrix(model, train, test, HeadConfig(steps=150))
    va = res[("video", "audio")]
    majority = float(torch.bincount(test.labels).max()) / len(test)
    margin = 3 * math.sqrt(majority * (1 - majority) / len(test))
    assert va.sequence_accuracy > majority + margin, (va.sequence_accuracy, majority)
    assert len(va.sequence_items) == len(test) and len(va.step_items) == len(test)
    assert set(res) == {(a, b) for a in SHAPES for b in SHAPES}


def test_same_seed_gives_the_same_codes_losses_and_usage(data):
    train, test = data
    runs = []
    for _ in range(2):
        model = UniCode(small_cfg(), SHAPES, seed=3)
        hist = train_unicode(model, train, steps=6, batch_size=40, seed=5)
        runs.append((hist.losses, model.codes(test), code_usage(model, test)))
    assert runs[0][0] == runs[1][0]
    for m in SHAPES:
        assert torch.equal(runs[0][1][m], runs[1][1][m])
    assert torch.equal(runs[0][2], runs[1][2])


def test_snapshots_restore_the_model_at_a_checkpoint(data, trained):
    train, test = data
    model, hist = trained
    fresh = UniCode(small_cfg(), SHAPES, seed=0)
    codes_end = model.codes(test)
    restore(model, hist, 0)
    assert all(torch.equal(model.codes(test)[m], fresh.codes(test)[m]) for m in SHAPES)
    restore(model, hist, 60)
    assert all(torch.equal(model.codes(test)[m], codes_end[m]) for m in SHAPES)
    with pytest.raises(ValueError, match="no snapshot at step 7"):
        restore(model, hist, 7)


@pytest.mark.parametrize("quantizer", QUANTIZERS)
def test_every_quantizer_trains_and_returns_codes_in_range(data, quantizer):
    train, test = data
    model = UniCode(small_cfg(quantizer=quantizer), SHAPES, seed=0)
    hist = train_unicode(model, train.subset(range(80)), steps=2, batch_size=40, seed=0)
    assert math.isfinite(hist.losses["total"][-1])
    codes, q = model.codes(test), model.quantized(test)
    for m in SHAPES:
        assert codes[m].shape == (len(test), T) and codes[m].dtype == torch.long
        assert 0 <= int(codes[m].min()) and int(codes[m].max()) < model.n_codes
        assert q[m].shape == (len(test), T, 32)
    assert code_usage(model, test).shape == (model.n_codes, 2, C + 1)


def test_masked_infonce_replaces_club_and_cpc(data):
    train, _ = data
    model = UniCode(small_cfg(masked_infonce=True), SHAPES, seed=0)
    assert len(model.clubs) == 0 and model.cpc is None
    hist = train_unicode(model, train, steps=2, batch_size=40)
    assert hist.losses["club"] == [0.0, 0.0] and hist.losses["cpc"] == [0.0, 0.0]
    assert all(v > 0 for v in hist.losses["infonce"])


def test_usage_tensor_counts_every_step_of_the_pass_once(data, trained):
    _, test = data
    model, _ = trained
    usage = code_usage(model, test)
    assert usage.dtype == torch.int64
    assert (usage.sum((0, 2)) == len(test) * T).all()
    assert torch.equal(usage.sum((0, 1)), 2 * torch.bincount(test.step_labels.reshape(-1), minlength=C + 1))


def test_usage_statistics_on_a_hand_made_tensor():
    usage = torch.zeros(4, 2, 3, dtype=torch.long)
    usage[0, 0, 0] = 5  # code 0: video only, one class
    usage[1, 0, 1], usage[1, 1, 1] = 2, 2  # code 1: both modalities, one class
    usage[2, 1, 0], usage[2, 1, 2] = 3, 3  # code 2: audio only, two classes evenly
    # code 3 unused
    torch.testing.assert_close(perplexity(usage), torch.tensor([math.exp(-(5 / 7) * math.log(5 / 7)
                                                                         - (2 / 7) * math.log(2 / 7)),
                                                                math.exp(-(2 / 8) * math.log(2 / 8)
                                                                         - (6 / 8) * math.log(6 / 8))]))
    assert dead_codes(usage) == 1
    assert shared_fraction(usage) == (1 / 3, 1 / 3)
    h = purity(usage)
    torch.testing.assert_close(h[:3], torch.tensor([0.0, 0.0, math.log(2)]))
    assert math.isnan(float(h[3]))


def test_feature_alignment_on_hand_made_features():
    """Two sequences of one step: audio is video moved by (0, 1), so the pair of a step is 1 apart and the
    same step of the other sequence sqrt(5)."""
    video = torch.tensor([[[0.0, 0.0]], [[2.0, 0.0]]])
    z = {"video": video, "audio": video + torch.tensor([0.0, 1.0])}

    class Stub:
        def semantic(self, features):
            return features

    a = feature_alignment(Stub(), z)
    assert a.centroid_gap == pytest.approx(1.0) and a.spread == pytest.approx(1.0)
    assert a.paired == pytest.approx(1.0) and a.unpaired == pytest.approx(math.sqrt(5))
    with pytest.raises(ValueError, match="two modalities"):
        feature_alignment(Stub(), {"video": video})


def test_retrieval_and_toc():
    class Fixed(UniCode):
        def codes(self, features):
            return {"video": torch.tensor([[0, 1], [1, 3], [1, 1]]), "audio": torch.tensor([[1, 0], [3, 3], [1, 1]])}

    model = Fixed(small_cfg(codes=4), {"video": (3,), "audio": (3,)})
    hist = code_retrieval(model, {}, "video", "audio")
    # video 1 {1, 3}: cosine 0.71 to its pair {3, 3} and to {1, 1}; a tie counts against it
    assert hist.ranks == [1, 2, 1] and hist.recall_at_1 == pytest.approx(2 / 3)
    steps = code_retrieval(model, {}, "video", "audio", measure="steps")  # order matters: [0, 1] vs [1, 0]
    assert steps.ranks == [3, 3, 1] and steps.recall_at_1 == pytest.approx(1 / 3)
    book = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, -2.0]])
    torch.testing.assert_close(toc_scores(book), torch.tensor([-0.7, 0.7 * 8 / 6 + 0.3 * 4]))
    assert toc_dimensions(book, 1).tolist() == [1]


@pytest.mark.parametrize("kw,match", [
    ({"codes": 0}, r"codes=0; accepted: an integer >= 2"),
    ({"dim": -4}, r"dim=-4; accepted: an integer >= 1"),
    ({"quantizer": "kmeans"}, "quantizer='kmeans'; accepted: one of shared_ema"),
    ({"encoder": "rnn"}, "encoder='rnn'"),
    ({"decay": 1.5}, r"decay=1\.5; accepted: a finite number in \[0, 1\)"),
    ({"cross_weight": -0.1}, r"cross_weight=-0\.1; accepted: a finite number in \[0, 1\]"),
    ({"fsq_levels": (4, 1)}, "fsq_levels"),
])
def test_bad_config_values_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        CodebookConfig(**kw)


def test_bad_model_inputs_are_named(data):
    train, _ = data
    with pytest.raises(ValueError, match="unknown variant 'best'"):
        CodebookConfig.variant("best")
    with pytest.raises(ValueError, match="unknown modality 'smell'; accepted: video, audio, text"):
        UniCode(small_cfg(), {"smell": (4,)})
    model = UniCode(small_cfg(), SHAPES, seed=0)
    with pytest.raises(ValueError, match="unknown modality 'touch'"):
        model.codes({"touch": torch.randn(2, T, 4)})
    with pytest.raises(ValueError, match=r"do not match the per-step shape \(12,\)"):
        model.codes({"audio": torch.randn(2, T, 13)})
    with pytest.raises(ValueError, match="checkpoints must lie in"):
        train_unicode(model, train, steps=3, checkpoints=(5,))
    with pytest.raises(ValueError, match="unknown modality 'text' for this model"):
        transfer_matrix(model, train, train, sources=("text",))
