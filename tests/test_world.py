import numpy as np
import pytest
import torch

from workbench.world import (
    ALL_CLASSES,
    CONTEXT_NAMES,
    NOVEL_CLASSES,
    PRETRAIN_CLASSES,
    SEEN_CONTEXTS,
    SPLITS,
    UNSEEN_CONTEXTS,
    World,
    WorldConfig,
)


def test_inventory():
    assert len(PRETRAIN_CLASSES) >= 10 and len(CONTEXT_NAMES) >= 8
    assert set(PRETRAIN_CLASSES).isdisjoint(NOVEL_CLASSES)
    assert set(SEEN_CONTEXTS).isdisjoint(UNSEEN_CONTEXTS)
    for name in ["pretrain", "finetune", "id_test", "ood_flipped", "ood_unseen", "ood_style"]:
        assert name in SPLITS


def test_batch_shapes_and_ranges(world):
    b = world.batch("pretrain", range(32))
    assert b.images.shape == (32, 3, 64, 64) and b.images.dtype == torch.float32
    assert 0 <= float(b.images.min()) and float(b.images.max()) <= 1
    assert b.masks.shape == (32, 64, 64) and b.masks.dtype == torch.bool
    assert len(b.captions) == 32 and all(isinstance(c, str) for c in b.captions)
    # every object is visible and smaller than the frame
    area = b.masks.float().mean((1, 2))
    assert (area > 0.005).all() and (area < 0.5).all()


def test_determinism_is_per_index(world):
    a = world.batch("finetune", [5, 6, 7, 8])
    b = world.batch("finetune", [7])
    assert torch.equal(a.images[2], b.images[0]) and a.captions[2] == b.captions[0]
    again = World(WorldConfig(seed=0)).batch("finetune", [5, 6, 7, 8])
    assert torch.equal(a.images, again.images) and torch.equal(a.masks, again.masks)
    other_seed = World(WorldConfig(seed=1)).batch("finetune", [5, 6, 7, 8])
    assert not torch.equal(a.images, other_seed.images)
    other_split = world.batch("id_test", [5, 6, 7, 8])
    assert not torch.equal(a.images, other_split.images)


def test_masks_are_where_the_object_is_painted(world):
    b = world.batch("heldout", range(16))
    # off the mask the image is background; on the mask it is (shaded) object colour: the two differ
    for img, m in zip(b.images, b.masks):
        inside = img[:, m].std(dim=1).mean()
        assert inside < 0.12  # a flat-coloured shape with soft shading


def test_captions_name_the_class(world):
    b = world.batch("pretrain", range(64))
    for cap, y in zip(b.captions, b.labels):
        assert ALL_CLASSES[int(y)] in cap


def _context_hist(world, split, n=2000):
    b = world.latents(split, range(n))
    return b.label.numpy(), b.context.numpy()


def test_finetune_ties_class_to_context(world):
    labels, ctx = _context_hist(world, "finetune")
    tied = np.array([world.tie[int(k)] for k in labels])
    share = (ctx == tied).mean()
    assert abs(share - 0.95) < 0.02
    assert set(CONTEXT_NAMES[c] for c in ctx) <= set(SEEN_CONTEXTS)


def test_p_tie_is_configurable_and_validated():
    w = World(WorldConfig(p_tie=0.5))
    labels, ctx = _context_hist(w, "finetune")
    tied = np.array([w.tie[int(k)] for k in labels])
    assert abs((ctx == tied).mean() - 0.5) < 0.04
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=str(bad)):
            WorldConfig(p_tie=bad)


def test_ood_splits(world):
    labels, ctx = _context_hist(world, "ood_flipped")
    tied = np.array([world.tie[int(k)] for k in labels])
    assert (ctx != tied).all()
    assert set(CONTEXT_NAMES[c] for c in ctx) == set(SEEN_CONTEXTS)
    _, ctx = _context_hist(world, "ood_unseen")
    assert set(CONTEXT_NAMES[c] for c in ctx) == set(UNSEEN_CONTEXTS)
    assert world.latents("ood_style", range(50)).sketch.all()
    assert not world.latents("id_test", range(50)).sketch.any()
    share = world.latents("pretrain", range(2000)).sketch.float().mean()
    assert 0.05 < share < 0.15


def test_balanced_classes(world):
    labels, _ = _context_hist(world, "heldout", n=1000)
    counts = np.bincount(labels, minlength=10)
    assert (counts == 100).all()
    novel = world.latents("novel_test", range(140)).label
    assert set(novel.tolist()) == set(range(len(ALL_CLASSES)))


def test_unknown_split_names_accepted_ones(world):
    with pytest.raises(KeyError, match="ood_flipped"):
        world.batch("ood_flip", range(2))


def test_clips_move_in_their_direction(world):
    c = world.clips("pretrain", range(12), frames=6)
    assert c.frames.shape == (12, 6, 3, 64, 64) and c.masks.shape == (12, 6, 64, 64)
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    for i in range(12):
        m = c.masks[i].float()
        cx = (m * xs).sum((1, 2)) / m.sum((1, 2))
        cy = (m * ys).sum((1, 2)) / m.sum((1, 2))
        dx, dy = float(cx[-1] - cx[0]), float(cy[-1] - cy[0])
        expected = {"right": (dx > 8), "left": (dx < -8), "up": (dy < -8), "down": (dy > 8)}
        assert expected[world.directions[int(c.direction[i])]], (i, dx, dy)
        assert world.directions[int(c.direction[i])] in c.captions[i]
    assert c.audio.shape[:2] == (12, 6)


def test_sounds_depend_on_class_and_context(world):
    s = world.sounds("pretrain", range(40))
    assert s.shape == (40, 1024) and torch.isfinite(s).all()
    assert torch.equal(s[3], world.sounds("pretrain", [3])[0])
    lat = world.latents("pretrain", range(40))
    # the class's pitch dominates the spectrum: the strongest low harmonic peaks differ between classes
    spec = torch.fft.rfft(s).abs()
    peak = spec[:, 5:200].argmax(1)
    by_class = {}
    for p, y in zip(peak.tolist(), lat.label.tolist()):
        by_class.setdefault(y, set()).add(p)
    assert len({min(v) for v in by_class.values()}) >= 5


def test_pretrain_groups_share_context_and_colour_but_not_class(world):
    lat = world.latents("pretrain", range(60))
    ctx, col, lab = lat.context.view(6, 10), lat.color.view(6, 10), lat.label.view(6, 10)
    assert (ctx == ctx[:, :1]).all() and (col == col[:, :1]).all()
    # each group names every pretraining class once: no false negatives inside a group
    assert all(sorted(row.tolist()) == sorted(lab[0].tolist()) and len(set(row.tolist())) == 10 for row in lab)
    assert len({tuple(c.tolist()) for c in ctx[:, :1]}) > 1
    # over the split, context stays independent of the class
    big = world.latents("pretrain", range(16000))
    table = torch.zeros(10, len(world.contexts))
    table.index_put_((big.label, big.context), torch.ones(16000), accumulate=True)
    assert (table > 0).all()
