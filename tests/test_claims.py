"""Claims as data: every verdict kind from synthetic cells, Holm and the two one-sided tests against
scipy / statsmodels, and a verdict that moves when and only when its numbers do."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from workbench.studies import kit
from workbench.studies.kit.claims import holm, judge, paragraph, seeds_needed

P = "Someone et al., 2023"


def rows(a: list[float], b: list[float], metric: str = "acc") -> list[dict]:
    """Cells of methods a and b over seeds 0.. with one metric."""
    return ([{"method": "a", "setting": None, "seed": s, metric: v} for s, v in enumerate(a)]
            + [{"method": "b", "setting": None, "seed": s, metric: v} for s, v in enumerate(b)])


def claim(direction=">", margin=None, cid="X-1", **kw) -> kit.Claim:
    return kit.Claim(cid, P, "a beats b", a="a", b="b", metric="acc", direction=direction, margin=margin, **kw)


A_UP = [0.60, 0.62, 0.61, 0.63, 0.60, 0.64, 0.62, 0.61]
B = [0.50, 0.51, 0.50, 0.52, 0.49, 0.52, 0.51, 0.50]


@pytest.mark.parametrize("direction,a,b,verdict", [
    (">", A_UP, B, "supported"),
    ("<", A_UP, B, "contradicted"),
    (">", B, A_UP, "contradicted"),
    (">", [0.55, 0.52, 0.58, 0.50], [0.5, 0.5, 0.5, 0.5], "unresolved"),
])
def test_directional_verdicts(direction, a, b, verdict):
    (v,) = judge([claim(direction)], rows(a, b), cfg=None)
    assert v.verdict == verdict
    d = [x - y for x, y in zip(a, b)]
    t = st.ttest_rel(a, b)
    assert v.p == pytest.approx(t.pvalue, rel=1e-9)  # the kit's paired t-test is scipy's
    assert v.paired.diff == pytest.approx(sum(d) / len(d))
    if verdict == "unresolved":
        assert v.paired.detectable is not None and v.seeds_needed is not None and v.seeds_needed > len(a)
        assert "could detect" in v.words()


def test_equivalence_matches_statsmodels_tost():
    from statsmodels.stats.weightstats import ttost_paired

    a = [0.500, 0.512, 0.498, 0.505, 0.503, 0.497, 0.501, 0.506]
    b = [0.502, 0.505, 0.501, 0.503, 0.500, 0.499, 0.503, 0.502]
    (v,) = judge([claim("=", 0.02)], rows(a, b), cfg=None)
    p_sm = ttost_paired(np.array(a), np.array(b), -0.02, 0.02)[0]
    assert v.p == pytest.approx(p_sm, rel=1e-6)
    assert v.verdict == "equivalent"
    (wide,) = judge([claim("=", 0.002)], rows(a, b), cfg=None)  # a margin far tighter than the spread
    assert wide.verdict == "unresolved"
    (far,) = judge([claim("=", 0.02)], rows(A_UP, B), cfg=None)  # 10 points apart, margin 2
    assert far.verdict == "contradicted"


def test_noninferiority():
    (ok,) = judge([claim(">=", 0.05)], rows([0.50, 0.51, 0.50, 0.49, 0.50], [0.51, 0.51, 0.50, 0.50, 0.51]), None)
    assert ok.verdict == "supported"
    (bad,) = judge([claim(">=", 0.02)], rows(B, A_UP), None)
    assert bad.verdict == "contradicted"


def test_holm_against_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    reject, adjusted = holm(p)
    # Holm: sort ascending, multiply the i-th smallest by (m - i), running max, cap at 1
    order = sorted(range(4), key=lambda i: p[i])
    want, running = [0.0] * 4, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * p[i]))
        want[i] = running
    assert adjusted == pytest.approx(want)
    assert reject == [w <= 0.05 for w in want]


def test_family_holds_the_error_rate_a_lone_claim_would_not():
    """A claim that passes alone (p just under 5%) is unresolved when four others share its family."""
    a = [0.52, 0.55, 0.50, 0.56, 0.51, 0.54]
    b = [0.50, 0.51, 0.51, 0.52, 0.50, 0.50]
    (alone,) = judge([claim()], rows(a, b), None)
    assert alone.p < 0.05 and alone.verdict == "supported"
    null = [0.5, 0.52, 0.49, 0.51, 0.5, 0.5]
    cells = rows(a, b) + [{"method": m, "setting": None, "seed": s, "acc": v} for m in ("c", "d")
                          for s, v in enumerate(null)]
    claims = [claim(cid="X-1")] + [kit.Claim(f"X-{i}", P, "c beats d", a="c", b="d", metric="acc")
                                    for i in range(2, 6)]
    fam = judge(claims, cells, None)
    assert fam[0].p == pytest.approx(alone.p)
    assert fam[0].p_holm == pytest.approx(min(1.0, 5 * alone.p)) and fam[0].verdict == "unresolved"
    assert "Holm" in paragraph(fam)


def test_verdict_changes_when_and_only_when_its_numbers_do():
    base = judge([claim()], rows(A_UP, B), None)[0]
    other_metric = [{**r, "unrelated": 1.0} for r in rows(A_UP, B)]
    assert judge([claim()], other_metric, None)[0].row() == base.row()  # same numbers: same verdict, same row
    flipped = judge([claim()], rows(B, A_UP), None)[0]
    assert flipped.verdict != base.verdict


def test_not_run_out_of_scope_one_seed_and_refs():
    r = rows(A_UP, B)
    missing = kit.Claim("X-2", P, "c beats b", a="c", b="b", metric="acc")
    scope = kit.Claim("X-3", P, "state of the art", out_of_scope="benchmark scale")
    v = {x.claim.id: x for x in judge([missing, scope], r, None)}
    assert v["X-2"].verdict == "not run" and v["X-3"].verdict == "out of scope"
    (one,) = judge([claim()], rows(A_UP[:1], B[:1]), None)
    assert one.verdict == "unresolved" and one.p is None

    class Cfg:
        k = 2

    cells = [{"method": "m", "setting": k, "seed": s, "acc": 0.5 + 0.1 * (k == 2) + 0.01 * s}
             for k in (0, 2) for s in range(4)]
    ref = kit.Claim("X-4", P, "k=2 beats k=0", a=("m", kit.Ref("k")), b=("m", 0), metric="acc")
    (v,) = judge([ref], cells, Cfg())
    assert v.sides == ("m@2", "m@0") and v.verdict == "supported"


def test_items_join_the_seed_spread():
    """Per-item values widen the interval (the item component) exactly as kit.paired computes it."""
    a_items = [[1, 0, 1, 1, 0, 1], [1, 1, 0, 1, 0, 1], [1, 0, 1, 1, 1, 1]]
    b_items = [[0, 0, 1, 1, 0, 0], [1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 1]]
    cells = [{"method": m, "setting": None, "seed": s, "acc": sum(it) / len(it), "acc_items": it}
             for m, items in (("a", a_items), ("b", b_items)) for s, it in enumerate(items)]
    (v,) = judge([claim()], cells, None)
    p = kit.paired(cells, "a", "b", "acc")
    assert (v.paired.lo, v.paired.hi) == (p.lo, p.hi)
    assert v.p == pytest.approx(2 * st.t.sf(abs(p.diff) / p.se, p.df))


def test_seeds_needed_resolves_at_the_observed_spread():
    a = [0.55, 0.50, 0.58, 0.49, 0.56]
    b = [0.50, 0.50, 0.50, 0.50, 0.50]
    (v,) = judge([claim()], rows(a, b), None)
    n = seeds_needed(claim(), v.paired, 0.05)
    sd = v.paired.se * math.sqrt(v.paired.n)
    # at n seeds the detectable difference (alpha 5%, power 80%) falls below the observed one, at n - 1 not yet
    det = lambda k: (st.t.ppf(0.975, k - 1) + st.t.ppf(0.8, k - 1)) * sd / math.sqrt(k)
    assert det(n) <= abs(v.paired.diff) < det(n - 1)


def test_seeds_needed_keeps_the_test_items_part_and_says_when_only_items_would_resolve():
    """More seeds shrink the seeds' part of se only; where the items' part alone is too wide, no seed count
    is given and the verdict says that more test items would resolve the claim."""
    from dataclasses import replace

    from workbench.studies.kit.claims import items_bound, unresolved_words

    a = [0.55, 0.50, 0.58, 0.49, 0.56]
    (v,) = judge([claim()], rows(a, [0.50] * 5), None)
    p = v.paired
    with_items = replace(p, se=math.sqrt(p.se ** 2 + 0.01 ** 2), se_items=0.01)  # a small items' part
    n_items, n_plain = seeds_needed(claim(), with_items, 0.05), seeds_needed(claim(), p, 0.05)
    assert n_items > n_plain  # the items' part stays at any n, so more seeds are needed
    sd = p.se * math.sqrt(p.n)
    det = lambda k: (st.t.ppf(0.975, k - 1) + st.t.ppf(0.8, k - 1)) * math.sqrt(sd ** 2 / k + 0.01 ** 2)
    assert det(n_items) <= abs(p.diff) < det(n_items - 1)
    wide = replace(p, se=math.sqrt(p.se ** 2 + 0.02 ** 2), se_items=0.02)  # 2.8 x 0.02 > the 0.036 difference
    assert seeds_needed(claim(), wide, 0.05) is None and items_bound(claim(), wide, 0.05)
    assert not items_bound(claim(), p, 0.05)
    words = unresolved_words(replace(v, paired=wide, seeds_needed=None, items_bound=True))
    assert "more test items, not more seeds, would resolve it" in words


@pytest.mark.parametrize("bad,match", [
    (dict(direction="!="), "direction"),
    (dict(direction="=", margin=None), "margin"),
    (dict(direction="=", margin=float("nan")), "margin"),
    (dict(direction=">", margin=0.1), "margin"),
])
def test_claim_refuses_bad_declarations(bad, match):
    with pytest.raises(ValueError, match=match):
        kit.Claim("X-9", P, "words", a="a", b="b", metric="acc", **bad)


def test_study_refuses_a_claim_on_an_unregistered_method():
    methods = kit.Registry("toy")
    methods.register("a", "A")(lambda ctx, cell: {})
    with pytest.raises(ValueError, match="not registered"):
        kit.Study("toy", object, methods, context=lambda cfg, **kw: None, report=lambda *a: kit.Report(),
                  claims=(kit.Claim("X-1", P, "w", a="a", b="zz", metric="acc"),))


def test_registry_refuses_a_method_of_the_wrong_shape():
    methods = kit.Registry("toy")
    with pytest.raises(TypeError, match="ctx, cell"):
        methods.register("a", "A")(lambda model, cell, cfg, classes: {})
    methods.register("b", "B", optional=True)(lambda ctx, cell: {})
    methods.register("c", "C")(lambda ctx, cell: {})
    assert methods.defaults() == ("c",) and methods.check("all") == ("c",)
    with pytest.raises(ValueError, match="twice"):
        methods.check(("c", "c"))


def test_standard_error_splits_into_seed_and_item_components():
    a_items = [[1, 0, 1, 1, 0, 1], [1, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1]]
    b_items = [[0, 0, 1, 1, 0, 0], [1, 0, 0, 1, 0, 0], [0, 0, 1, 1, 0, 1]]
    cells = [{"method": m, "setting": None, "seed": s, "acc": sum(it) / len(it), "acc_items": it}
             for m, items in (("a", a_items), ("b", b_items)) for s, it in enumerate(items)]
    (v,) = judge([claim()], cells, None)
    row = v.row()
    assert row["se"] ** 2 == pytest.approx(row["se_seeds"] ** 2 + row["se_items"] ** 2)
    assert row["se_items"] > 0 and row["se_seeds"] > 0
    plain = [{k: x for k, x in c.items() if k != "acc_items"} for c in cells]
    assert judge([claim()], plain, None)[0].row()["se_items"] == 0.0
