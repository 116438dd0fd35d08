"""Item-level values of the set metrics (issue 25): jackknife pseudo-values of the gap metrics, per-pair R@1 hits
and per-pair shares of the contrastive loss, and the paired intervals they widen."""
import pytest
import torch

from workbench.eval import modality_gap as mg
from workbench.studies import kit


def _pairs(n: int = 24, d: int = 8, seed: int = 0, offset: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g)
    b = a + 0.8 * torch.randn(n, d, generator=g)
    b[:, 0] += offset  # a gap between the modalities
    return a, b


def test_jackknife_pseudo_values_of_a_linear_statistic_average_to_it():
    a, b = _pairs()
    items = mg.gap_items(a, b)
    assert set(items) == set(mg.ITEM_FIELDS) and all(len(v) == len(a) for v in items.values())
    # L2I and the paired cosine are means over pairs: each pseudo-value is that pair's own value
    assert sum(items["l2i"]) / len(a) == pytest.approx(mg.pair_distance(a, b), abs=1e-12)
    assert sum(items["paired_cos"]) / len(a) == pytest.approx(mg.paired_cosine(a, b), abs=1e-12)
    na, nb = torch.nn.functional.normalize(a.double(), dim=-1), torch.nn.functional.normalize(b.double(), dim=-1)
    assert items["l2i"] == pytest.approx((na - nb).norm(dim=1).tolist(), abs=1e-10)


def test_jackknife_of_nonlinear_set_metrics_is_close_to_them():
    a, b = _pairs(n=48)
    items = mg.gap_items(a, b)
    g = mg.gap_metrics(a, b)
    for field in ("l2m", "rmg", "uniformity"):
        # their mean is the bias-corrected estimate: near the metric (within two jackknife standard errors)
        v = torch.tensor(items[field])
        se = float(v.std() / len(v) ** 0.5)
        assert abs(float(v.mean()) - getattr(g, field)) < 2 * se, field
    # the jackknife by hand for L2M on a small set
    a3, b3 = a[:4], b[:4]
    theta = mg.centroid_gap(a3, b3)
    keep = [i for i in range(4) if i != 2]
    pseudo = 4 * theta - 3 * mg.centroid_gap(a3[keep], b3[keep])
    assert mg.gap_items(a3, b3, ("l2m",))["l2m"][2] == pytest.approx(pseudo)
    assert mg.gap_items(a[:2], b[:2]) == {}  # leaving one out of two leaves no set
    with pytest.raises(ValueError, match="unknown field"):
        mg.gap_items(a, b, ("l3m",))


def test_loss_items_average_to_the_contrastive_loss():
    a, b = _pairs()
    items = mg.contrastive_loss_items(a, b, 0.05)
    assert sum(items) / len(items) == pytest.approx(mg.contrastive_loss(a, b, 0.05), rel=1e-12)


def test_r1_hits_average_to_r1():
    from workbench.eval.retrieval import retrieval_from_features
    from workbench.studies.module_selection.measure import r1_hits

    a, b = _pairs(n=30, offset=0.0)
    captions = [f"c{i % 20}" for i in range(30)]  # some captions twice: positives by text
    r = retrieval_from_features(a, b, captions)
    hits = r1_hits(a, b, captions)
    assert set(hits) <= {0.0, 0.5, 1.0}
    assert sum(hits) / len(hits) == pytest.approx((r.i2t_r1 + r.t2i_r1) / 2, abs=1e-6)


def test_item_values_widen_the_paired_interval():
    """Two seeds per side; with the pairs' pseudo-values the interval adds the test items' spread."""
    rows = []
    for seed in (0, 1):
        for method, offset in (("a", 0.5), ("b", 0.7)):
            x, y = _pairs(seed=seed, offset=offset)
            rows.append({"method": method, "seed": seed, "l2m": mg.centroid_gap(x, y),
                         "l2m_items": mg.gap_items(x, y, ("l2m",))["l2m"]})
    with_items = kit.paired(rows, "a", "b", "l2m")
    without = kit.paired([{k: v for k, v in r.items() if k != "l2m_items"} for r in rows], "a", "b", "l2m")
    assert with_items.diff == pytest.approx(without.diff)
    assert with_items.se > without.se
