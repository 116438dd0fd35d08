"""Modality-gap metrics and the caption scorer against hand-computed examples."""
import math

import pytest
import torch

from workbench.eval import captioning as cap
from workbench.eval import modality_gap as mg

EYE = torch.eye(2)
SAME_A, SAME_B = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
SWAP = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


def test_identical_pairs_have_no_gap():
    g = mg.gap_metrics(EYE, 3 * EYE)  # scale does not matter: everything is normalised
    assert g.l2m == pytest.approx(0) and g.l2i == pytest.approx(0) and g.rmg == pytest.approx(0)
    assert g.paired_cos == pytest.approx(1) and g.unmatched_cos == pytest.approx(0)


def test_separated_modalities():
    # every image at (1, 0), every text at (0, 1): centroids sqrt(2) apart, each pair sqrt(2) apart,
    # paired dissimilarity (1 - 0) / 2 = 0.5, no spread within a modality -> RMG = 1
    assert mg.centroid_gap(SAME_A, SAME_B) == pytest.approx(math.sqrt(2))
    assert mg.pair_distance(SAME_A, SAME_B) == pytest.approx(math.sqrt(2))
    assert mg.relative_gap(SAME_A, SAME_B) == pytest.approx(1.0)


def test_swapped_pairs_share_centroid_but_not_pairs():
    # both centroids (0.5, 0.5): L2M 0; pairs orthogonal: L2I sqrt(2), m = 0.5; within each modality the
    # two items are orthogonal: d = 0.5 -> RMG = 0.5 / (0.5 + 0.5)
    assert mg.centroid_gap(EYE, SWAP) == pytest.approx(0, abs=1e-12)
    assert mg.pair_distance(EYE, SWAP) == pytest.approx(math.sqrt(2))
    assert mg.relative_gap(EYE, SWAP) == pytest.approx(0.5)
    assert mg.paired_cosine(EYE, SWAP) == pytest.approx(0)
    d = mg.cosine_distributions(EYE, SWAP)
    assert d.matched.tolist() == pytest.approx([0, 0]) and d.unmatched.tolist() == pytest.approx([1, 1])


def test_unmatched_leaves_out_same_caption_pairs():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d = mg.cosine_distributions(a, a, captions=["x", "x", "y"])
    assert len(d.matched) == 3 and len(d.unmatched) == 9 - 3 - 2  # (0, 1) and (1, 0) are positives too


def test_uniformity_by_hand():
    assert mg.uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)  # |x-y|^2 = 4, t = 2
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # squared distances 2, 4, 2
    assert mg.uniformity(x) == pytest.approx(math.log((2 * math.exp(-4) + math.exp(-8)) / 3))


def test_shift_closes_and_widens_the_gap():
    a, b = mg.shift(SAME_A, SAME_B, 1.0)  # Delta = (1, -1): both land on norm(0.5, 0.5)
    assert torch.allclose(a, b) and torch.allclose(a[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    torch.manual_seed(0)
    img, txt = torch.randn(50, 8) + 2, torch.randn(50, 8) - 2
    curve = mg.shift_curve(img, txt, [-0.5, 0.0, 0.5, 1.0])
    gaps = [p.gap for p in curve]
    assert gaps[1] == pytest.approx(mg.centroid_gap(img, txt))
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]


def test_contrastive_loss_by_hand():
    # logits [[1, 0], [0, 1]] / 1: CE = log(1 + e^-1) both ways
    assert mg.contrastive_loss(EYE, EYE, 1.0) == pytest.approx(math.log(1 + math.exp(-1)))
    with pytest.raises(ValueError, match="temperature"):
        mg.contrastive_loss(EYE, EYE, 0.0)


def test_shift_curve_zero_shot_accuracy():
    img = torch.tensor([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    txt = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.2]])
    [p] = mg.shift_curve(img, txt, [0.0], class_text=EYE, labels=torch.tensor([0, 1, 1]))
    assert p.accuracy == pytest.approx(2 / 3) and p.lam == 0.0
    with pytest.raises(ValueError, match="both"):
        mg.shift_curve(img, txt, [0.0], class_text=EYE)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(3, 2\) and \(2, 2\)"):
        mg.gap_metrics(torch.ones(3, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match="at least 2"):
        mg.centroid_gap(torch.ones(1, 2), torch.ones(1, 2))


def test_read_slots_whole_words():
    s = cap.read_slots("A red semicircle moving LEFT on a printed page.")
    assert s == {"object": "semicircle", "colour": "red", "context": "on a printed page", "direction": "left"}
    assert cap.read_slots("a thing")["object"] is None


def test_score_captions_by_hand():
    slots = [dict(object="circle", colour="red", context="on grass", direction="left"),
             dict(object="square", colour="blue", context="in snow", direction="up")]
    refs = ["a red circle moving left on grass.", "a blue square moving up in snow."]
    s = cap.score_captions(["a red circle moving left on grass.", "a blue star"], refs, slots)
    assert s.slot_accuracy == {"object": 0.5, "colour": 1.0, "context": 0.5, "direction": 0.5}
    assert s.all_slots == 0.5 and s.slot_items["colour"] == [1, 1]
    perfect = cap.score_captions(refs, refs, slots)
    assert perfect.all_slots == 1.0 and perfect.bleu4 == pytest.approx(1.0, abs=1e-6)
    assert perfect.cider > s.cider > 0
    with pytest.raises(ValueError, match="one of each"):
        cap.score_captions(refs, refs[:1], slots)
    with pytest.raises(ValueError, match="unknown slot"):
        cap.score_captions(refs, refs, [{"size": "big"}, {}])
