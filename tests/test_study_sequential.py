"""kit.Study plans seeds where the claims are, and its sequential mode adds seeds to open claims only,
stops when they resolve, judges every look at alpha / looks, and replays from the cache on a rerun."""
from __future__ import annotations

import random
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from workbench.studies import kit
from workbench.studies.kit.study import MAX_LOOKS, SEED_BATCH
from workbench.viz.claims import claims_markdown, seeds_markdown

P = "Toy et al."
CALLS: list[kit.Cell] = []


@dataclass(frozen=True)
class Config:
    seeds: tuple[int, ...] = (0, 1, 2)
    claim_seeds: tuple[int, ...] = ()
    effect: float = 0.05
    cost: float = 0.0  # the training seconds each cell reports
    methods: tuple[str, ...] | str = "all"


def _score(base: float):
    def run(ctx, cell) -> dict:
        CALLS.append(cell)
        rng = random.Random(1000 * cell.seed + len(cell.method))  # same seed: same numbers
        return {"acc": base + (ctx.cfg.effect if cell.method == "better" else 0.0) + rng.gauss(0, 0.02),
                "train_seconds": ctx.cfg.cost}
    return run


def study(t2_seeds: int | None = None) -> kit.Study:
    """T-1 (headline) and T-2 (a headline claim asking for `t2_seeds` seeds when given, else not headline)."""
    methods = kit.Registry("toy_sequential")
    methods.register("base", "base")(_score(0.5))
    methods.register("better", "better")(_score(0.5))
    methods.register("other", "other")(_score(0.5))
    claims = (kit.Claim("T-1", P, "better beats base", a="better", b="base", metric="acc", headline=True),
              kit.Claim("T-2", P, "other beats base", a="other", b="base", metric="acc",
                        headline=t2_seeds is not None, seeds=t2_seeds))
    return kit.Study("toy_sequential", Config, methods, claims=claims,
                     context=lambda cfg, **kw: SimpleNamespace(cfg=cfg, weights="w"),
                     report=lambda ctx, rows, verdicts: kit.Report(findings=kit.claims.paragraph(verdicts)))


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WORKBENCH_UNTIL_RESOLVED", raising=False)
    CALLS.clear()


def test_claim_seeds_go_to_the_headline_claims_cells_only(tmp_path):
    s = study()
    r = s.run(Config(claim_seeds=(3, 4, 5, 6, 7)), output_dir=tmp_path / "o", progress=False)
    seeds = {row["method"]: sorted(x["seed"] for x in r.rows if x["method"] == row["method"]) for row in r.rows}
    assert seeds["better"] == seeds["base"] == list(range(8)) and seeds["other"] == [0, 1, 2]
    plan = {(p["method"], p["seeds"]): p["headline_claims"] for p in r.claims_family["seeds"]}
    assert plan == {("base", 8): ["T-1"], ("better", 8): ["T-1"], ("other", 3): []}
    t1 = next(c for c in r.claims if c["id"] == "T-1")
    assert t1["seeds"] == 8


def test_a_claim_that_declares_seeds_gets_them_on_top_of_claim_seeds(tmp_path):
    """T-2 asks for 6 seeds: its cells (other, base) get seeds 0-5, the seeds after the highest in use (0-3)
    added; T-1's `better` keeps seeds + claim_seeds (0-3); the seed plan and its table say why."""
    s = study(t2_seeds=6)
    cfg = Config(claim_seeds=(3,))
    r = s.run(cfg, output_dir=tmp_path / "o", progress=False)
    seeds = {m: sorted(x["seed"] for x in r.rows if x["method"] == m) for m in ("better", "base", "other")}
    assert seeds == {"better": [0, 1, 2, 3], "base": list(range(6)), "other": list(range(6))}
    assert s.headline_seeds(cfg, s.claims[0]) == (3,) and s.headline_seeds(cfg, s.claims[1]) == (3, 4, 5)
    plan = {p["method"]: (p["seeds"], p["headline_claims"], p["declared_seeds"]) for p in r.claims_family["seeds"]}
    assert plan == {"better": (4, ["T-1"], None), "base": (6, ["T-1", "T-2"], 6), "other": (6, ["T-2"], 6)}
    table = seeds_markdown(r.claims_family)
    assert "asks for 6 seeds" in table and table.count("seeds + claim_seeds") == 1  # better's row
    assert {c["id"]: c["seeds"] for c in r.claims} == {"T-1": 4, "T-2": 6}
    assert s.pending(cfg) == []  # a sweep plans the same cells, the declared seeds included
    # no claim seeds (quick mode): the declared count adds nothing either
    none = s.run(Config(), output_dir=tmp_path / "q", progress=False)
    assert {x["seed"] for x in none.rows} == {0, 1, 2}


@pytest.mark.parametrize("kw, match", [
    (dict(seeds=1, headline=True), r"seeds=1; accepted: None or an integer >= 2"),
    (dict(seeds=8.0, headline=True), r"seeds=8.0; accepted"),
    (dict(seeds=8), r"seeds=8 applies to headline claims only"),
])
def test_claim_seeds_must_be_a_count_of_a_headline_claim(kw, match):
    with pytest.raises(ValueError, match=match):
        kit.Claim("T-9", P, "x", a="better", b="base", metric="acc", **kw)


def test_sequential_mode_adds_seeds_until_resolved_and_replays_from_the_cache(tmp_path):
    s = study()
    cfg = Config(effect=0.03, seeds=(0, 1))
    first = s.run(cfg, output_dir=tmp_path / "a", progress=False, until_resolved=True)
    looks = first.claims_family["looks"]
    assert 1 < len(looks) <= MAX_LOOKS
    assert first.claims_family["alpha"] == pytest.approx(0.05 / MAX_LOOKS)
    assert all(v.alpha == pytest.approx(0.05 / MAX_LOOKS) for v in first.verdicts)
    t1 = next(c for c in first.claims if c["id"] == "T-1")
    # seeds were added a batch at a time to T-1's cells while it was open, and no more once it resolved
    open_looks = sum("T-1" in look["open"] for look in looks)
    assert t1["seeds"] == 2 + SEED_BATCH * min(open_looks, len(looks) - 1)
    assert {x["seed"] for x in first.rows if x["method"] == "better"} == set(range(t1["seeds"]))
    if t1["verdict"] == "supported":
        assert "T-1" not in looks[-1]["open"]
    other = {x["seed"] for x in first.rows if x["method"] == "other"}  # T-2 (no effect) stayed open to the end
    assert len(other) == 2 + SEED_BATCH * (len(looks) - 1)
    computed = len(CALLS)
    again = s.run(cfg, output_dir=tmp_path / "b", progress=False, until_resolved=True)
    assert len(CALLS) == computed  # a rerun replays every look from the cache
    assert again.claims == first.claims and again.claims_family["looks"] == [
        {**look, "minutes": again.claims_family["looks"][i]["minutes"]} for i, look in enumerate(looks)]


def test_sequential_stops_at_once_when_nothing_is_open(tmp_path):
    s = study()
    r = s.run(Config(effect=0.5, seeds=(0, 1, 2, 3)), output_dir=tmp_path / "o", progress=False,
              until_resolved=True)
    t1 = next(c for c in r.claims if c["id"] == "T-1")
    assert t1["verdict"] == "supported"
    assert r.claims_family["looks"][-1]["stopped"] in ("every claim resolved", f"the last look ({MAX_LOOKS})")
    # T-2 has no effect: it stays open, so seeds go to its cells (other, base) and never to `better`
    assert {x["seed"] for x in r.rows if x["method"] == "better"} == {0, 1, 2, 3}


def test_budget_must_be_positive_and_env_turns_it_on(tmp_path, monkeypatch):
    s = study()
    with pytest.raises(ValueError, match="budget_minutes"):
        s.run(Config(), output_dir=tmp_path / "o", progress=False, until_resolved=True, budget_minutes=0)
    monkeypatch.setenv("WORKBENCH_UNTIL_RESOLVED", "0.0001")  # a budget spent at the first look
    r = s.run(Config(effect=0.0), output_dir=tmp_path / "p", progress=False)
    assert len(r.claims_family["looks"]) == 1
    assert r.claims_family["looks"][-1]["stopped"] == "the budget (0.0001 min) spent"


def test_sequential_stops_before_a_batch_that_would_pass_the_budget(tmp_path):
    """Cells that report 60 s of training each: the first batch (3 open cells x 4 seeds) costs 12 min, so
    with a 10-min budget (the run itself takes seconds) a second batch is not started; the last look says
    why."""
    s = study()
    r = s.run(Config(effect=0.0, cost=60.0), output_dir=tmp_path / "o", progress=False, until_resolved=True,
              budget_minutes=10)
    looks = r.claims_family["looks"]
    assert [look["seeds"] for look in looks] == [3, 3 + SEED_BATCH]
    assert looks[-1]["stopped"].startswith("the next batch of seeds (about 12.0 min")
    assert "stopped" not in looks[0]
    assert "stopped: the next batch of seeds" in claims_markdown(r.claims, r.claims_family)
    # with room for the second batch it runs, and stops at the last look or on the budget
    more = s.run(Config(effect=0.0, cost=60.0), output_dir=tmp_path / "p", progress=False, until_resolved=True,
                 budget_minutes=30)
    assert len(more.claims_family["looks"]) > 2


def test_a_method_left_out_gets_no_claim_seeds(tmp_path):
    s = study()
    r = s.run(Config(methods=("other", "base"), claim_seeds=(3, 4)), output_dir=tmp_path / "o", progress=False)
    assert {x["method"] for x in r.rows} == {"other", "base"}  # T-1 compares `better`, which was left out
    assert {x["seed"] for x in r.rows} == {0, 1, 2}
    assert next(c for c in r.claims if c["id"] == "T-1")["verdict"] == "not run"
