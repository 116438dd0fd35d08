"""Study 3: a unified discrete codebook across modalities (Uni-Code / CMG, NeurIPS 2023), with its pictures.

    from workbench.studies import codebook as s
    result = s.run(s.Config.preset(quick=True))     # a smoke run: small data, 2 seeds, 5 methods
    result = s.run(s.Config(seeds=(0, 1, 2)))         # every method, ablation and codebook size

The task: paired event sequences from the world (`workbench.world.events`: T = 10 steps of video,
sound and caption from one latent event track, with misaligned steps), turned into per-step
features by frozen encoders (tiny-world-clip's towers, a spectral front end) and cached on disk.
Each cell trains one codebook model (`workbench.methods.codebook`) on the training sequences, then
freezes it, trains small heads on one modality's quantised features and tests them on another
modality's features of held-out sequences (sequence classification and per-step localisation,
every direction), retrieves across modalities through the codes, and measures codebook usage.

The study's own parts: `config` (the knobs), `methods` (the registry: Uni-Code, the quantizer and
objective baselines, the paper's ablations), `data` (features and their cache), `cells` (the grid
and one cell's work), `findings` (the text against the paper's numbers) and `views` (what the
figures and the explorer draw, from the kept models).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import kit
from . import findings as _findings
from .cells import KEEP, checkpoint_steps, pair_id, pairs, run_cell
from .claims import CLAIMS, PAPER
from .config import CACHE_SKIP, QUICK, Config
from .data import Splits, event_features, standardise
from .findings import fmt
from .methods import METHODS, OPTIONAL, VARIANTS, codebook_config
from .views import KeptModel, exemplars, kept_model, transfer_table

NAME = "codebook"
# bump when a cell's meaning changes (old cells are then ignored); 2: the model follows the authors' code
# (L_cmcm, Cross-CPC per source, disjoint reset windows, clipping, CLUB's q-network)
CACHE_VERSION = 2
METRICS = ("seq_va", "seq_av", "step_va", "step_av", "seq_cross", "step_cross", "val_seq_cross", "r1_va", "r1_av",
           "perplexity_video", "perplexity_audio", "perplexity_text", "dead", "shared_two", "shared_all", "purity",
           "align_gap", "align_spread", "align_paired", "align_unpaired", "train_seconds")
METRIC_NOTES = {
    "seq_xy": "sequence classification accuracy on held-out test sequences, head trained on x's codes, tested on "
              "y's (v video, a audio, t text)",
    "step_xy": "per-step localisation accuracy (C classes + background) the same way",
    "seq_cross / step_cross": "mean over every cross-modal direction",
    "val_*": "the same on the validation sequences (for choosing settings)",
    "r1_xy": "recall@1 of finding a test sequence's pair in modality y from its codes in x (bag-of-codes cosine)",
    "perplexity_m / dead / shared_* / purity": "codebook usage over the whole test pass",
    "align_*": "distances between modalities' semantic features on the test pass (mean over modality pairs): "
               "centroid gap, spread around a modality's mean, same step (paired), same step of another sequence",
}

__all__ = ["CACHE_SKIP", "CACHE_VERSION", "CLAIMS", "KEEP", "METHODS", "OPTIONAL",
           "NAME", "METRICS", "METRIC_NOTES", "PAPER",
           "QUICK", "STUDY", "SHOWN", "VARIANTS", "Config", "KeptModel", "Result", "Splits", "checkpoint_steps",
           "codebook_config",
           "display_rows",
           "event_features", "exemplars", "fmt", "kept_cells", "kept_model", "pair_id", "pairs", "plan_cells", "run",
           "run_cell", "standardise", "summarise", "transfer_table"]


@dataclass(kw_only=True)
class Result(kit.Result):
    table: list[dict] = field(default_factory=list)  # one row per (method, codes): mean, std, CI over seeds
    comparisons: list[dict] = field(default_factory=list)
    kept: dict[str, KeptModel] = field(default_factory=dict)  # method -> first-seed model, checkpoints, usage
    splits: Splits | None = None  # the (standardised) features the cells trained and tested on
    trained: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)

    def of(self, method: str) -> list[dict]:
        return [r for r in self.table if r["method"] == method]

    def row(self, method: str, codes: int | None = None) -> dict | None:
        codes = self.config.codes if codes is None else codes
        return next((r for r in self.table if r["method"] == method and r["codes"] == codes), None)


def kept_cells(cfg: Config) -> list[kit.Cell]:
    """The cells whose first-seed model (and training checkpoints) the figures draw."""
    return [kit.Cell(m, cfg.codes, cfg.seeds[0]) for m in KEEP if m in cfg.methods]


@dataclass
class Context:
    """What every cell of a run shares: the config, the standardised features, where kept models go."""

    cfg: Config
    splits: Splits
    weights: str  # fingerprint of the frozen encoders
    feature_seconds: float
    data_key: Any = None
    cache: kit.CellCache | None = None

    def bind(self, cache: kit.CellCache) -> None:
        self.cache = cache

    def artefact(self, cell: kit.Cell) -> Path:
        return self.cache.artefact(cell, "model.pt")

    def keep(self, cell: kit.Cell) -> Path | None:
        return self.artefact(cell) if cell in kept_cells(self.cfg) else None

    def needs(self, cell: kit.Cell) -> list[Path]:
        return [self.artefact(cell)] if cell in kept_cells(self.cfg) else []

    def grad_norm_every(self, cell: kit.Cell) -> int:
        """Kept cells record each loss term's gradient norm on the semantic encoders (about 20 times a run)."""
        return max(1, self.cfg.train_steps // 20) if cell in kept_cells(self.cfg) else 0


def build_context(cfg: Config, use_cache: bool = True, progress: bool = True) -> Context:
    from .data import load_encoder

    encoder = load_encoder(cfg)
    raw = event_features(cfg, encoder, use_cache)
    return Context(cfg, standardise(raw), kit.weights_fingerprint(encoder), raw.seconds)


def report(ctx: Context, rows: list[dict], verdicts: list[kit.Verdict]) -> kit.Report:
    cfg, splits = ctx.cfg, ctx.splits
    table = summarise(rows)
    chance = {"sequence": 1 / len(splits.test.classes),
              "step": float((splits.test.step_labels == splits.test.background).float().mean())}
    text, comparisons = _findings.write(table, rows, cfg, chance, verdicts)
    kept = {c.method: kept_model(c, cfg, splits, ctx.artefact(c)) for c in kept_cells(cfg)}
    ids = {kit.Cell(r["method"], r["setting"], r["seed"]).id: r["cached"] for r in rows}
    tables = {"methods": table, "comparisons": comparisons, "paper": paper_table(table, cfg),
              "sizes": [r for r in table if r["method"] == "unicode"],
              **{f"transfer_{m}": transfer_table(table, m, cfg) for m in kept}}
    return kit.Report(
        tables=tables, findings=text, headline=_findings.headline(table, cfg, verdicts), main_table="paper",
        metrics={"chance": chance, "feature_seconds": round(ctx.feature_seconds, 2), "metric_notes": METRIC_NOTES,
                 "kept": {m: k.summary() for m, k in kept.items()}},
        extra={"table": table, "comparisons": comparisons, "kept": kept, "splits": splits,
               "trained": [i for i, c in ids.items() if not c], "cached": [i for i, c in ids.items() if c]})


STUDY = kit.Study(name=NAME, config=Config, methods=METHODS, context=build_context, report=report,
                  cache_skip=CACHE_SKIP, version=CACHE_VERSION, quick=QUICK, claims=CLAIMS, result=Result,
                  title="codebook")


def run(cfg: Config | None = None, output_dir: str | Path | None = None, progress: bool = True,
        use_cache: bool = True) -> Result:
    """Run (or resume) every cell, judge the claims, summarise, write result.json; returns the Result."""
    return STUDY.run(cfg, output_dir, progress=progress, use_cache=use_cache)


def plan_cells(cfg: Config) -> list[kit.Cell]:
    """The cells this config runs: every method at cfg.codes, Uni-Code also at every other size."""
    return STUDY.plan(STUDY.resolve(cfg))


def summarise(rows: list[dict]) -> list[dict]:
    """One row per (method, codes): label, group and mean, std, 95% interval over seeds of every metric."""
    table = []
    for row in kit.summarise(rows, tuple(sorted({k for r in rows for k in r if _is_metric(k, r)}))):
        method, codes = row.pop("method"), row.pop("setting")
        table.append({"method": method, "label": METHODS[method].label, "group": METHODS[method].group,
                      "codes": codes, **row})
    return table


def _is_metric(key: str, row: dict) -> bool:
    return key not in ("method", "setting", "seed", "cached") and not key.endswith("_items") and \
        isinstance(row[key], (int, float)) and not isinstance(row[key], bool)


def paper_table(table: list[dict], cfg: Config) -> list[dict]:
    """The paper's rows beside ours (%, V->A / A->V held-out sequence classification): Table 3 for the
    three-modality rows, Table 2 for the two-modality ones (and the rows Table 3 lacks)."""
    out = []
    for m in METHODS:
        r = next((x for x in table if x["method"] == m and x["codes"] == cfg.codes), None)
        if r is None:
            continue
        va, av, where = PAPER.get(m, (None, None, "-"))
        out.append({"method": METHODS[m].label, "ours V->A": fmt(r, "seq_va"), "ours A->V": fmt(r, "seq_av"),
                    "paper V->A": "-" if va is None else f"{va:.1f}", "paper A->V": "-" if av is None else f"{av:.1f}",
                    "paper's table": where, "ours step V->A": fmt(r, "step_va"), "ours step A->V": fmt(r, "step_av")})
    return out


SHOWN = ("seq_va", "seq_av", "step_va", "step_av", "seq_cross", "r1_va", "r1_av", "dead", "shared_two")


def display_rows(table: list[dict], metrics: tuple[str, ...] = SHOWN) -> list[dict]:
    """The methods table with "mean ± std" strings (accuracies and fractions in %), for a Markdown table."""
    out = []
    for r in table:
        line = {"method": r["label"], "group": r["group"], "codes": r["codes"]}
        for m in metrics:
            line[m] = f"{r[m]:.0f}" if m == "dead" and r.get(m) is not None else fmt(r, m)
        out.append(line)
    return out
