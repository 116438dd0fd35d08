"""A paper's claims as data, and the verdicts the kit gives them from a study's cells.

A study declares its paper's claims as rows: the paper and its words, the comparison that tests
the claim at workbench scale (method a against method b, or a setting against another, on one
metric), the direction the paper asserts, the paper's own number with its table, and for a
"matches" claim the equivalence margin.

    CLAIMS = (
        kit.Claim("MCF-2", PAPER, "distilling on masked images keeps the OOD accuracy FT loses",
                  a="mask_fd", b="full_ft", metric="ood_avg", direction=">",
                  paper_value="58.7 vs 54.9 OOD avg", paper_table="Table 1", headline=True),
        kit.Claim("AU-2", PAPER, "matches LoRA", a=("mode_approx", kit.Ref("chosen")), b="lora",
                  metric="r1", direction="=", margin=0.03),
    )
    verdicts = kit.judge(CLAIMS, rows, cfg)

Directions: ">" / "<" (a above / below b), "=" (a equals b within +-margin: two one-sided tests),
">=" (a is not worse than b by more than margin: non-inferiority). Every claim's difference is the
kit's paired difference (`stats.paired`: seeds, plus the item-level spread where cells carry
per-item values), so its p-value is the paired t-test's.

Verdicts (`Verdict.verdict`):

* **supported**: the test rejects in the paper's direction (for "=": the interval lies inside the
  margin -> **equivalent**; for ">=": a is above b - margin);
* **contradicted**: the test rejects against it (for "=" and ">=": a is outside the margin);
* **unresolved**: neither, with the difference the run could have detected and the number of seeds
  that would resolve it at the observed spread;
* **not run** (the cells the comparison needs are not in this run) and **out of scope** (the claim
  is about benchmark scale: the reason is declared).

The family-wise error over one study's tested claims is held at `alpha` (5%) with Holm's step-down
procedure (statsmodels' `multipletests`); the interval reported beside each verdict is the
unadjusted 95% one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from scipy import stats as _st

from .stats import POWER, Paired, paired

ALPHA = 0.05
DIRECTIONS = (">", "<", "=", ">=")
VERDICTS = ("supported", "contradicted", "equivalent", "unresolved", "not run", "out of scope")
MAX_SEEDS = 1000  # "seeds that would resolve it" beyond this is reported as None (not within reach)


@dataclass(frozen=True)
class Ref:
    """A setting read from the run's Config (or from a callable of the rows and Config) when the claim is judged:
    `("unicode", Ref("codes"))` is Uni-Code at the run's main codebook size."""

    name: str
    of: Callable[[Sequence[dict], Any], Any] | None = None

    def resolve(self, rows: Sequence[dict], cfg: Any) -> Any:
        return self.of(rows, cfg) if self.of is not None else getattr(cfg, self.name)

    def __str__(self) -> str:
        return self.name


Side = Any  # a method id, or (method id, setting) where the setting may be a Ref


@dataclass(frozen=True)
class Claim:
    """One claim of a paper and the comparison that tests it here."""

    id: str  # the claim's id in the design notes' inventory (MCF-2, AU-4, CMG-1, MP-4, ...)
    paper: str  # "Xiao et al., CVPR 2023"
    words: str  # the paper's words, short
    a: Side = None
    b: Side = None
    metric: str | tuple[str, ...] = ""  # several: their mean (and their items' mean) is compared
    direction: str = ">"
    margin: float | None = None  # for "=" and ">=", in the metric's own units
    paper_value: str = ""  # the paper's own numbers for this comparison
    paper_table: str = ""  # where they come from ("Table 3")
    headline: bool = False  # one of the study's headline claims (seeds go there first)
    # a headline claim whose cells are cheap can ask for more seeds than the run's `seeds` + `claim_seeds`:
    # its cells get at least this many in all, the seeds after the highest in use added, whenever the run
    # gives claim seeds at all (claim_seeds=(), as in quick mode, adds none)
    seeds: int | None = None
    scale: float = 100.0  # display: accuracies in points
    unit: str = "points"
    out_of_scope: str = ""  # the reason, for a claim that cannot be tested at workbench scale
    note: str = ""  # how the comparison departs from the paper's, if it does
    # a custom comparison (e.g. OOD against the WiSE-FT curve at the same ID accuracy): (rows, cfg) -> Paired
    test: Callable[[Sequence[dict], Any], Paired] | None = field(default=None, compare=False)
    cells: tuple = ()  # for a custom test: the sides (method or (method, setting)) whose cells it reads

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id}: direction={self.direction!r}; accepted: {', '.join(DIRECTIONS)}")
        needs_margin = self.direction in ("=", ">=")
        if needs_margin and not (self.margin is not None and math.isfinite(self.margin) and self.margin > 0):
            raise ValueError(f"claim {self.id}: direction {self.direction!r} needs a finite margin > 0, "
                             f"got {self.margin!r}")
        if not needs_margin and self.margin is not None:
            raise ValueError(f"claim {self.id}: margin={self.margin!r} only applies to '=' and '>=' claims")
        if self.seeds is not None and (isinstance(self.seeds, bool) or not isinstance(self.seeds, int)
                                       or self.seeds < 2):
            raise ValueError(f"claim {self.id}: seeds={self.seeds!r}; accepted: None or an integer >= 2 (the "
                             "seeds its cells get in all)")
        if self.seeds is not None and not self.headline:
            raise ValueError(f"claim {self.id}: seeds={self.seeds} applies to headline claims only (headline=True)")
        if not self.out_of_scope and self.test is None and not (self.a and self.b and self.metric):
            raise ValueError(f"claim {self.id}: needs a, b and metric (or a test, or out_of_scope='reason')")

    @property
    def metric_name(self) -> str:
        return self.metric if isinstance(self.metric, str) else f"mean({', '.join(self.metric)})"

    @property
    def comparison(self) -> str:
        if self.out_of_scope:
            return ""
        return f"{side_name(self.a)} vs {side_name(self.b)} on {self.metric_name}" if self.a else self.metric_name

    def sides(self, rows: Sequence[dict], cfg: Any) -> tuple[Side, Side]:
        return resolve(self.a, rows, cfg), resolve(self.b, rows, cfg)

    def methods(self) -> set[str]:
        """The method ids whose cells the claim's comparison reads."""
        return {s if isinstance(s, str) else s[0] for s in (self.a, self.b) if s}


def resolve(side: Side, rows: Sequence[dict], cfg: Any) -> Side:
    if isinstance(side, tuple) and isinstance(side[1], Ref):
        return (side[0], side[1].resolve(rows, cfg))
    return side


def side_name(side: Side) -> str:
    if side is None or isinstance(side, str):
        return str(side)
    return f"{side[0]}@{side[1]}"


@dataclass(frozen=True)
class Verdict:
    """A claim judged on one run's cells."""

    claim: Claim
    verdict: str
    paired: Paired | None = None
    p: float | None = None  # the claim's own test (two-sided t; one-sided for the margin tests)
    p_holm: float | None = None  # Holm-adjusted within the study's family
    seeds_needed: int | None = None  # for unresolved claims: seeds that would resolve it (80% power)
    reason: str = ""
    sides: tuple[str, str] = ("", "")
    alpha: float = ALPHA  # the family-wise level it was judged at (sequential mode: per look)
    items_bound: bool = False  # unresolved, and the test items' part alone too wide: more items, not seeds

    @property
    def resolved(self) -> bool:
        return self.verdict in ("supported", "contradicted", "equivalent")

    @property
    def holds(self) -> bool:
        return self.verdict in ("supported", "equivalent")

    def row(self, study: str = "") -> dict:
        """The claim and its verdict as result.json's `claims` rows (schema in the README)."""
        c, p = self.claim, self.paired
        return {"id": c.id, "study": study, "paper": c.paper, "words": c.words, "a": self.sides[0],
                "b": self.sides[1], "metric": c.metric_name, "direction": c.direction, "margin": c.margin,
                "paper_value": c.paper_value, "paper_table": c.paper_table, "headline": c.headline,
                "verdict": self.verdict, "diff": p.diff if p else None, "lo": p.lo if p else None,
                "hi": p.hi if p else None, "seeds": p.n if p else 0, "p": self.p, "p_holm": self.p_holm,
                "detectable": p.detectable if p else None, "seeds_needed": self.seeds_needed,
                "items_bound": self.items_bound,
                "se": p.se if p else None, "se_seeds": p.se_seeds if p else None, "se_items": p.se_items if p else None,
                "scale": c.scale,
                "unit": c.unit, "reason": self.reason or c.out_of_scope or c.note}

    def words(self) -> str:
        """One sentence: '[MCF-2] masked FD vs FT on ood_avg: +3.1 points (95% CI +1.2 to +5.0, 8 seeds): supported
        (Holm p = 0.020); paper: 58.7 vs 54.9 OOD avg (Table 1).'"""
        c = self.claim
        head = f"[{c.id}] {c.words}"
        if self.verdict == "out of scope":
            return f"{head}: out of scope at workbench scale ({c.out_of_scope})."
        if self.verdict == "not run":
            return f"{head}: not run ({self.reason})."
        s = f"{head} -- {side_name(self.sides[0])} vs {side_name(self.sides[1])} on {c.metric_name}: {diff_words(self)}"
        s += f": **{self.verdict}**"
        if self.p_holm is not None and self.resolved:
            s += f" (Holm-adjusted p = {self.p_holm:.3g})"
        if self.verdict == "unresolved":
            s += "; " + (self.reason or unresolved_words(self))
        if c.paper_value:
            s += f"; paper: {c.paper_value}" + (f" ({c.paper_table})" if c.paper_table else "")
        return s + "."


def fmt_points(v: float | None, c: Claim, sign: bool = True) -> str:
    if v is None:
        return "n/a"
    return f"{c.scale * v:+.{_digits(c)}f}" if sign else f"{c.scale * v:.{_digits(c)}f}"


def _digits(c: Claim) -> int:
    return 1 if c.scale >= 100 else 3


def diff_words(v: Verdict) -> str:
    c, p = v.claim, v.paired
    if p is None:
        return "n/a"
    s = f"{fmt_points(p.diff, c)} {c.unit}".rstrip()
    if p.lo is None:
        return s + f" ({p.n} seed: no interval)"
    s += f" (95% CI {fmt_points(p.lo, c)} to {fmt_points(p.hi, c)}, {p.n} seeds"
    if c.margin is not None:
        s += f"; margin ±{fmt_points(c.margin, c, sign=False)}"
    return s + ")"


def unresolved_words(v: Verdict) -> str:
    c, p = v.claim, v.paired
    if p is None or p.lo is None:
        return "one seed gives no interval"
    s = ""
    if p.detectable is not None:
        s = f"the run could detect about {fmt_points(p.detectable, c, sign=False)} {c.unit}".rstrip()
    if v.seeds_needed is not None:
        s += f"; about {v.seeds_needed} seeds would resolve it at the observed spread"
    elif v.items_bound:
        s += ("; the test items' part of the interval alone is too wide at the observed difference: more test "
              "items, not more seeds, would resolve it")
    elif c.direction in ("=", ">=") and abs(p.diff) >= c.margin:
        s += "; the observed difference is at the margin, so more seeds alone may not resolve it"
    else:
        s += f"; more than {MAX_SEEDS} seeds would be needed at the observed difference"
    return s.lstrip("; ")


# ---------------------------------------------------------------------------------------------- tests
def claim_test(c: Claim, p: Paired) -> tuple[float, str]:
    """(p-value, the verdict if it rejects) of a claim's test on its paired difference."""
    t = lambda x: x / p.se
    sf = lambda x: float(_st.t.sf(x, p.df))
    cdf = lambda x: float(_st.t.cdf(x, p.df))
    if p.se == 0:  # every seed and item agree exactly: the sign decides, nothing is uncertain
        return _exact(c, p.diff)
    if c.direction in (">", "<"):
        pv = 2 * sf(abs(t(p.diff)))
        up = p.diff > 0
        return pv, "supported" if up == (c.direction == ">") else "contradicted"
    m = c.margin
    if c.direction == "=":
        p_eq = max(sf(t(p.diff + m)), cdf(t(p.diff - m)))  # two one-sided tests: -m < diff < m
        p_out = sf(t(p.diff - m)) if p.diff > 0 else cdf(t(p.diff + m))  # diff beyond the margin on its side
        return (p_eq, "equivalent") if p_eq <= p_out else (p_out, "contradicted")
    p_ok = sf(t(p.diff + m))  # non-inferiority: diff > -m
    p_bad = cdf(t(p.diff + m))  # inferiority beyond the margin: diff < -m
    return (p_ok, "supported") if p_ok <= p_bad else (p_bad, "contradicted")


def _exact(c: Claim, d: float) -> tuple[float, str]:
    if c.direction in (">", "<"):
        if d == 0:
            return 1.0, "unresolved"
        return 0.0, "supported" if (d > 0) == (c.direction == ">") else "contradicted"
    if c.direction == "=":
        return 0.0, "equivalent" if abs(d) < c.margin else "contradicted"
    return 0.0, "supported" if d > -c.margin else "contradicted"


def holm(pvalues: Sequence[float], alpha: float = ALPHA) -> tuple[list[bool], list[float]]:
    """Holm's step-down procedure (statsmodels): which hypotheses are rejected, and the adjusted p-values."""
    if not pvalues:
        return [], []
    from statsmodels.stats.multitest import multipletests

    reject, adjusted, _, _ = multipletests(list(pvalues), alpha=alpha, method="holm")
    return [bool(r) for r in reject], [float(a) for a in adjusted]


def _gap(c: Claim, p: Paired) -> tuple[float, bool]:
    """How far the observed difference lies from what the test must exclude, and whether it is two-sided."""
    if c.direction in (">", "<"):
        return abs(p.diff), True
    if c.direction == "=":
        return c.margin - abs(p.diff), False
    return p.diff + c.margin, False


def seeds_needed(c: Claim, p: Paired, alpha: float) -> int | None:
    """Seeds at which the claim's test would reject with 80% power if the observed difference and spread held
    (paired t; for margins, the one-sided test at the distance to the margin). More seeds shrink the seeds'
    part of the standard error only: the test items' part (the same items for every seed) stays, so a claim
    whose items' part alone is too wide gets None (`items_bound`)."""
    if p.se is None or p.n < 2 or p.se == 0:
        return None
    sd = p.se_seeds * math.sqrt(p.n)  # per-seed spread of the difference
    gap, two_sided = _gap(c, p)
    if gap <= 0:
        return None
    q = 1 - alpha / 2 if two_sided else 1 - alpha
    for n in range(2, MAX_SEEDS + 1):
        se = math.sqrt(sd ** 2 / n + p.se_items ** 2)
        if (float(_st.t.ppf(q, n - 1)) + float(_st.t.ppf(POWER, n - 1))) * se <= gap:
            return n
    return None


def items_bound(c: Claim, p: Paired | None, alpha: float) -> bool:
    """Whether the test items' part of the standard error alone keeps the claim from resolving at any number
    of seeds (at 80% power, the observed difference): more test items, not seeds, would resolve it."""
    if p is None or p.se is None or not p.se_items:
        return False
    gap, two_sided = _gap(c, p)
    z = float(_st.norm.ppf(1 - alpha / 2 if two_sided else 1 - alpha)) + float(_st.norm.ppf(POWER))
    return gap > 0 and z * p.se_items > gap


def judge(claims: Sequence[Claim], rows: Sequence[dict], cfg: Any, alpha: float = ALPHA) -> list[Verdict]:
    """Every claim's verdict on these cells, the family-wise error over the tested ones held at `alpha` (Holm)."""
    tested: list[tuple[int, Paired, float, str, tuple[str, str]]] = []
    out: list[Verdict | None] = []
    for i, c in enumerate(claims):
        if c.out_of_scope:
            out.append(Verdict(c, "out of scope", reason=c.out_of_scope, alpha=alpha))
            continue
        try:
            if c.test is not None:
                p = c.test(rows, cfg)
                sides = (p.a, p.b)
            else:
                a, b = c.sides(rows, cfg)
                p = paired(with_mean(rows, c.metric), a, b, c.metric_name)
                sides = (side_name(a), side_name(b))
        except KeyError as err:
            why = err.args[0] if err.args else str(err)
            out.append(Verdict(c, "not run", reason=f"its cells are not in this run ({why}); run them with -p methods",
                               alpha=alpha))
            continue
        if p.lo is None or p.se is None:
            out.append(Verdict(c, "unresolved", p, reason="one seed gives no interval", sides=sides, alpha=alpha))
            continue
        pv, outcome = claim_test(c, p)
        tested.append((i, p, pv, outcome, sides))
        out.append(None)
    reject, adjusted = holm([t[2] for t in tested], alpha)
    m = max(len(tested), 1)
    for (i, p, pv, outcome, sides), rej, adj in zip(tested, reject, adjusted):
        c = claims[i]
        if rej and outcome != "unresolved":
            out[i] = Verdict(c, outcome, p, pv, adj, sides=sides, alpha=alpha)
        else:  # the most demanding Holm level is alpha / m: plan seeds for it
            out[i] = Verdict(c, "unresolved", p, pv, adj, seeds_needed(c, p, alpha / m), sides=sides, alpha=alpha,
                             items_bound=items_bound(c, p, alpha / m))
    return [v for v in out if v is not None]


def with_mean(rows: Sequence[dict], metrics: str | tuple[str, ...]) -> Sequence[dict]:
    """`rows`, each with the mean of `metrics` (and of their per-item values) added under `mean(a, b)`."""
    if isinstance(metrics, str):
        return rows
    name = f"mean({', '.join(metrics)})"
    out = []
    for r in rows:
        if any(r.get(m) is None for m in metrics):
            out.append(r)
            continue
        r = {**r, name: sum(r[m] for m in metrics) / len(metrics)}
        items = [r.get(f"{m}_items") for m in metrics]
        if all(i is not None for i in items) and len({len(i) for i in items}) == 1:
            r[f"{name}_items"] = [sum(col) / len(col) for col in zip(*items)]
        out.append(r)
    return out


def family(verdicts: Sequence[Verdict], alpha: float = ALPHA) -> dict:
    """result.json's `claims_family`: how the study's claims were tested together (alpha: per look)."""
    return {"method": "holm", "alpha": alpha, "size": sum(v.p is not None for v in verdicts)}


def tally(verdicts: Sequence[Verdict]) -> str:
    """'Of 13 claims: 3 hold (supported or equivalent), 1 contradicted, 7 unresolved, 2 not tested here.'"""
    n = len(verdicts)
    holds = sum(v.holds for v in verdicts)
    contra = sum(v.verdict == "contradicted" for v in verdicts)
    unres = sum(v.verdict == "unresolved" for v in verdicts)
    other = n - holds - contra - unres
    s = f"Of the paper's {n} claims declared here: {holds} hold (supported or equivalent), {contra} contradicted, " \
        f"{unres} unresolved"
    return s + (f", {other} not tested here (out of scope or not run)." if other else ".")


def paragraph(verdicts: Sequence[Verdict]) -> str:
    """The claims as findings prose: the tally, then one sentence per claim (headline claims first)."""
    if not verdicts:
        return ""
    alpha = verdicts[0].alpha
    ordered = sorted(verdicts, key=lambda v: (not v.claim.headline, VERDICTS.index(v.verdict)))
    size = sum(v.p is not None for v in verdicts)
    level = (f"{alpha:.0%}" if alpha == ALPHA else
             f"{alpha:.2%} per look (sequential: {ALPHA:.0%} split over the looks, Bonferroni)")
    return (f"{tally(verdicts)} Verdicts hold the family-wise error at {level} over the {size} tested claims "
            "(Holm); intervals are the unadjusted paired 95% ones. " + " ".join(v.words() for v in ordered))


def headline_words(verdicts: Sequence[Verdict]) -> str:
    """The headline claims' verdicts in one sentence each, for the run report's first screen."""
    heads = [v for v in verdicts if v.claim.headline] or list(verdicts[:1])
    return " ".join(f"Verdict on the paper's claim that {v.claim.words} ({v.claim.id}): {v.verdict}, "
                    f"{side_name(v.sides[0])} vs {side_name(v.sides[1])} {diff_words(v)}"
                    + (f" ({unresolved_words(v)})" if v.verdict == "unresolved" and v.paired.lo is not None else "")
                    + "."
                    if v.paired is not None else
                    f"Verdict on the paper's claim that {v.claim.words} ({v.claim.id}): {v.verdict}." for v in heads)
