"""Paired event sequences: shapes, the latent track, misalignment rates, nuisance, determinism, bad input."""
import pytest
import torch

from workbench.world import World, WorldConfig
from workbench.world.events import BACKGROUND, HEARD_ONLY, SEEN_HEARD, SEEN_ONLY, EventConfig, event_track, events


@pytest.fixture(scope="module")
def batch(world):
    return events(world, "heldout", range(40))


def test_shapes_and_ranges(batch, world):
    C = len(world.split_classes("heldout"))
    assert batch.frames.shape == (40, 10, 3, 64, 64) and batch.audio.shape == (40, 10, 1024)
    assert 0 <= float(batch.frames.min()) and float(batch.frames.max()) <= 1
    assert len(batch.captions) == 40 and all(len(row) == 10 for row in batch.captions)
    assert batch.step_labels.shape == (40, 10) and batch.step_labels.dtype == torch.long
    assert batch.background == C and int(batch.step_labels.max()) <= C
    assert torch.equal(batch.labels, torch.arange(40) % C)  # balanced over indices
    # every step is either background or the sequence's own class
    own = batch.step_labels == batch.labels.view(-1, 1)
    assert ((batch.step_labels == C) | own).all()


def test_track_and_modalities_agree(batch):
    event = batch.step_labels < batch.background
    assert not (batch.visible & ~event).any() and not (batch.audible & ~event).any()
    assert (event == (batch.visible | batch.audible)).all()  # an event step is seen, heard, or both
    for i in range(len(batch)):  # each caption's wording follows what happens at its step
        for t in range(10):
            seen, heard = bool(batch.visible[i, t]), bool(batch.audible[i, t])
            pool = SEEN_HEARD if seen and heard else SEEN_ONLY if seen else HEARD_ONLY if heard else BACKGROUND
            text = batch.captions[i][t]
            assert any(_fits(tpl, text) for tpl in pool), (seen, heard, text)
            assert (batch.classes[batch.labels[i]] in text) == (seen or heard)


def _fits(template: str, text: str) -> bool:
    fixed = [p for p in template.replace("{", "}").split("}")[::2] if p.strip(" ,.")]
    return all(p.strip() in text for p in fixed)


def test_hidden_object_leaves_the_backdrop(world):
    cfg = EventConfig(p_silent=0.0, p_offscreen=1.0, p_background=0.0)
    b = events(world, "heldout", range(6), cfg)
    assert not b.visible.any() and b.audible.any()
    # no object anywhere: every frame of a sequence is the same backdrop
    assert torch.allclose(b.frames, b.frames[:, :1].expand_as(b.frames))
    full = events(world, "heldout", range(6), EventConfig(p_silent=0.0, p_offscreen=0.0, p_background=0.0))
    moved = (full.frames[:, 1:] - full.frames[:, :-1]).abs().amax((2, 3, 4))  # (B, T - 1)
    both_on = full.visible[:, 1:] & full.visible[:, :-1]
    assert both_on.any() and (moved[both_on] > 0.05).all()  # the object travels between visible frames


def test_sound_follows_audibility(world):
    quiet = events(world, "heldout", range(8), EventConfig(p_silent=1.0, p_offscreen=0.0, p_background=0.0))
    loud = events(world, "heldout", range(8), EventConfig(p_silent=0.0, p_offscreen=0.0, p_background=0.0))
    assert not quiet.audible.any()
    on = loud.audible
    # the same noise band under both; the audible steps add the class signature on top
    assert torch.allclose(quiet.audio[~on], loud.audio[~on])
    assert (loud.audio[on].pow(2).mean(-1) > 1.5 * quiet.audio[on].pow(2).mean(-1)).all()
    # the signature's pitch is the class's: the spectral peak of the signal rises with the class index
    signal = (loud.audio - quiet.audio)[on]
    peak = torch.fft.rfft(signal).abs()[:, 1:].argmax(-1)
    k = world.latents("heldout", range(8)).label.view(-1, 1).expand(-1, 10)[on]
    assert torch.corrcoef(torch.stack([peak.float(), k.float()]))[0, 1] > 0.5


def test_misalignment_rates(world):
    cfg = EventConfig(p_silent=0.3, p_offscreen=0.2, p_background=0.1, min_length=10, max_length=10)
    tr = event_track(world, "heldout", torch.arange(2000).numpy(), cfg)
    vis, aud = tr.visible.float(), tr.audible.float()
    silent = (tr.visible & ~tr.audible).float().mean()
    off = (tr.audible & ~tr.visible).float().mean()
    pause = (tr.step_labels == 10).float().mean()
    for got, want in ((silent, 0.3), (off, 0.2), (pause, 0.1), ((vis * aud).mean(), 0.4)):
        assert abs(float(got) - want) < 0.02, (float(got), want)


def test_event_span_lengths(world):
    cfg = EventConfig(p_silent=0, p_offscreen=0, p_background=0, min_length=3, max_length=5)
    tr = event_track(world, "heldout", torch.arange(500).numpy(), cfg)
    on = tr.step_labels < 10
    lengths = on.sum(1)
    assert set(lengths.tolist()) == {3, 4, 5}
    first = on.float().argmax(1)
    assert all(on[i, first[i]:first[i] + lengths[i]].all() for i in range(500))  # one contiguous span


def test_deterministic_per_index(world, batch):
    again = events(world, "heldout", [7, 3])
    assert torch.equal(again.frames[0], batch.frames[7]) and torch.equal(again.audio[1], batch.audio[3])
    assert again.captions[0] == batch.captions[7] and torch.equal(again.step_labels[1], batch.step_labels[3])
    other = events(World(WorldConfig(seed=1)), "heldout", [7])
    assert not torch.equal(other.audio[0], batch.audio[7])


def test_nuisance_varies_within_a_class(batch):
    same = batch.labels == 0
    assert len(set(batch.contexts[same].tolist())) > 1 or len(set(batch.colors[same].tolist())) > 1


@pytest.mark.parametrize("kwargs, match", [
    ({"p_silent": 1.5}, r"p_silent=1\.5 is outside \[0, 1\]"),
    ({"p_offscreen": -0.1}, r"p_offscreen=-0\.1 is outside \[0, 1\]"),
    ({"p_background": float("nan")}, r"p_background=nan is outside \[0, 1\]"),
    ({"p_silent": 0.6, "p_offscreen": 0.6}, r"sum to at most 1"),
    ({"steps": 1, "min_length": 1, "max_length": 1}, r"at least 2 steps"),
    ({"min_length": 6, "max_length": 4}, r"min_length=6, max_length=4"),
    ({"max_length": 11}, r"<= steps \(10\)"),
    ({"audio_length": 16}, r"audio_length=16"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EventConfig(**kwargs)


def test_bad_calls(world):
    with pytest.raises(TypeError, match="steps=2.5"):
        EventConfig(steps=2.5)
    with pytest.raises(TypeError, match="EventConfig"):
        events(world, "heldout", [0], config={"steps": 4})
    with pytest.raises(KeyError, match="unknown split"):
        events(world, "nope", [0])
