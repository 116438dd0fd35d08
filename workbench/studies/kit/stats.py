"""Statistics over seeds, in one place: mean, std, 95% intervals, paired differences, verdicts.

A difference between two methods is "beyond noise" only when the paired 95% interval of the
difference excludes zero; otherwise it is "within noise", and `Paired.detectable` says what
difference the run could have detected (80% power, two-sided 5% test, at the observed spread).
Pairs are formed by seed (same seed = same data order and initialisation draws); when a metric
also carries per-item values (`<metric>_items`, one list per seed, e.g. 0/1 correctness per test
image), the item-level spread of the difference is added to the seed-level one.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from scipy import stats as _st

LEVEL = 0.95
POWER = 0.80


def _t(q: float, df: int) -> float:
    return float(_st.t.ppf(q, df))


@dataclass(frozen=True)
class Summary:
    """Mean, std and the 95% t-interval of the mean of a metric over n seeds (no interval for n < 2)."""

    mean: float
    std: float
    n: int
    lo: float | None
    hi: float | None

    @property
    def half_width(self) -> float | None:
        return None if self.lo is None else (self.hi - self.lo) / 2


def summary(values: Iterable[float]) -> Summary:
    v = [float(x) for x in values if x is not None]
    if not v:
        raise ValueError("summary() of no values")
    mean = statistics.fmean(v)
    if len(v) < 2:
        return Summary(mean, 0.0, len(v), None, None)
    sd = statistics.stdev(v)
    h = _t(0.5 + LEVEL / 2, len(v) - 1) * sd / math.sqrt(len(v))
    return Summary(mean, sd, len(v), mean - h, mean + h)


def summarise(rows: Sequence[dict], metrics: Sequence[str], by: Sequence[str] = ("method", "setting"),
              ) -> list[dict]:
    """One row per group of `rows` (keys `by`, first-seen order): seeds, and per metric its mean
    (`m`), std over seeds (`m_std`) and 95% interval of the mean (`m_ci`: [lo, hi] or None)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(zip(by, key))
        row["seeds"] = len(rs)
        for m in metrics:
            values = [r[m] for r in rs if r.get(m) is not None]
            if not values:
                row[m], row[f"{m}_std"], row[f"{m}_ci"] = None, None, None
                continue
            s = summary(values)
            row[m], row[f"{m}_std"] = s.mean, s.std
            row[f"{m}_ci"] = None if s.lo is None else [s.lo, s.hi]
        out.append(row)
    return out


@dataclass(frozen=True)
class Paired:
    """The paired difference a - b of one metric: mean, 95% interval, and what it could detect."""

    metric: str
    a: str
    b: str
    diff: float
    lo: float | None  # None: one pair and no item-level values, so no interval
    hi: float | None
    n: int  # pairs (seeds)
    detectable: float | None  # smallest |difference| this run would find with 80% power
    se: float | None = None  # standard error of `diff` (seeds, plus items where they exist)
    df: int | None = None  # degrees of freedom of the t reference distribution
    se_items: float = 0.0  # the test-item component of `se` (0: no per-item values): se^2 = seed^2 + items^2

    @property
    def se_seeds(self) -> float | None:
        """The seed component of `se` (what more seeds shrink; more test items shrink `se_items`)."""
        return None if self.se is None else math.sqrt(max(self.se ** 2 - self.se_items ** 2, 0.0))

    @property
    def beyond_noise(self) -> bool:
        return self.lo is not None and (self.lo > 0 or self.hi < 0)

    @property
    def verdict(self) -> str:
        return "beyond noise" if self.beyond_noise else "within noise"

    @property
    def sign(self) -> int:
        """+1 / -1 when a is above / below b beyond noise, else 0."""
        return (1 if self.diff > 0 else -1) if self.beyond_noise else 0

    def row(self) -> dict:
        """The comparison as a table row (result.json's `comparisons`)."""
        return {"a": self.a, "b": self.b, "metric": self.metric, "diff": self.diff, "lo": self.lo, "hi": self.hi,
                "seeds": self.n, "verdict": self.verdict, "detectable": self.detectable}

    def words(self, scale: float = 100.0, unit: str = " points") -> str:
        """'+1.0 points (95% CI -0.5 to +2.5, 3 seeds): within noise; the run could detect about 3.1 points'."""
        d = f"{scale * self.diff:+.1f}{unit}"
        if self.lo is None:
            return f"{d} (1 seed: no interval, so not tested)"
        s = f"{d} (95% CI {scale * self.lo:+.1f} to {scale * self.hi:+.1f}, {self.n} seed{'s' * (self.n > 1)})"
        s += f": {self.verdict}"
        if not self.beyond_noise and self.detectable is not None:
            s += f"; the run could detect about {scale * self.detectable:.1f}{unit}"
        return s


def paired_values(a: Sequence[float], b: Sequence[float], *, metric: str = "", names: tuple[str, str] = ("a", "b"),
                  items: tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]] | None = None) -> Paired:
    """The paired difference of per-seed values `a[i] - b[i]` (same seeds, same order).

    `items`: per-seed per-item values of both sides (lists of equal length per seed); their
    item-level variance of the seed-averaged difference is added to the seed-level variance.
    """
    if len(a) != len(b) or not a:
        raise ValueError(f"paired values need the same non-zero number of seeds, got {len(a)} and {len(b)}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    bad = [(i, x, y) for i, (x, y) in enumerate(zip(a, b)) if not (math.isfinite(float(x)) and math.isfinite(float(y)))]
    if bad:
        i, x, y = bad[0]
        raise ValueError(f"paired {metric or 'values'} {names[0]} vs {names[1]}: seed #{i} holds {x!r} and {y!r}; "
                         "a difference needs finite numbers on both sides (a NaN says the cell's training diverged)")
    n = len(d)
    mean = statistics.fmean(d)
    var = statistics.variance(d) / n if n > 1 else 0.0
    var_items = 0.0
    df = n - 1
    if items is not None:
        ia, ib = items
        per_item = [statistics.fmean(float(x) - float(y) for x, y in zip(col_a, col_b))
                    for col_a, col_b in zip(zip(*ia), zip(*ib))]  # item -> mean over seeds of the difference
        if len(per_item) > 1:
            var_items = statistics.variance(per_item) / len(per_item)
            var += var_items
            df = max(df, len(per_item) - 1) if n == 1 else df
    if df < 1 or (var == 0.0 and n < 2):
        return Paired(metric, *names, mean, None, None, n, None)
    se = math.sqrt(var)
    h = _t(0.5 + LEVEL / 2, df) * se
    detect = (_t(0.5 + LEVEL / 2, df) + _t(POWER, df)) * se
    return Paired(metric, *names, mean, mean - h, mean + h, n, detect, se, df, math.sqrt(var_items))


def paired(rows: Sequence[dict], a: str | tuple[str, Any], b: str | tuple[str, Any], metric: str) -> Paired:
    """Paired difference of `metric` between method a and method b over the seeds both have.

    `a` / `b`: a method id, or (method id, setting) where a study sweeps settings. A method run
    once for all seeds (seed None: zero-shot, say) is paired with every seed of the other side.
    """
    def pick(spec) -> dict[Any, dict]:
        method, setting = (spec, None) if isinstance(spec, str) else spec
        got = {r.get("seed"): r for r in rows if r["method"] == method
               and (isinstance(spec, str) or r.get("setting") == setting) and r.get(metric) is not None}
        if not got:
            raise KeyError(f"no rows of {spec!r} with metric {metric!r}")
        return got

    ra, rb = pick(a), pick(b)
    if list(ra) == [None]:
        ra = dict.fromkeys(rb, ra[None])
    if list(rb) == [None]:
        rb = dict.fromkeys(ra, rb[None])
    seeds = [s for s in ra if s in rb]
    if not seeds:
        raise KeyError(f"{a!r} and {b!r} share no seed for {metric!r}")
    key = f"{metric}_items"
    items = None
    if all(key in ra[s] and key in rb[s] for s in seeds):
        items = ([ra[s][key] for s in seeds], [rb[s][key] for s in seeds])
    return paired_values([ra[s][metric] for s in seeds], [rb[s][metric] for s in seeds], metric=metric,
                         names=(_name(a), _name(b)), items=items)


def _name(spec: str | tuple[str, Any]) -> str:
    return spec if isinstance(spec, str) else f"{spec[0]}@{spec[1]}"


class Comparisons:
    """Every paired comparison a study's findings make, recorded for result.json's `comparisons` table.

    `cmp(a, b, metric)` is `paired(rows, a, b, metric)`, remembered; with `missing_ok` a side that did not
    run gives None instead of a KeyError. `unresolved()` lists what the within-noise comparisons could
    have detected, for the findings' "this run could detect about ..." sentence.
    """

    def __init__(self, rows: Sequence[dict], missing_ok: bool = False):
        self.cells, self.missing_ok, self.done = rows, missing_ok, []

    def __call__(self, a, b, metric: str) -> Paired | None:
        try:
            p = paired(self.cells, a, b, metric)
        except KeyError:
            if self.missing_ok:
                return None
            raise
        self.done.append(p.row())
        return p

    def unresolved(self) -> list[float]:
        return [c["detectable"] for c in self.done if c["verdict"] == "within noise" and c["detectable"] is not None]


def fmt(row: dict | None, metric: str, scale: float = 1.0, digits: int = 3) -> str:
    """A summary row's metric as "mean ± std" ("n/a" when absent; no ± for one seed): the one such formatter."""
    if row is None or row.get(metric) is None:
        return "n/a"
    std = row.get(f"{metric}_std")
    s = f"{scale * row[metric]:.{digits}f}"
    return s + (f" ± {scale * std:.{digits}f}" if row.get("seeds", 1) > 1 and std is not None else "")
