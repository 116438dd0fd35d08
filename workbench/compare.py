"""Is a rerun the same as a published run? Every metric of two runs, side by side.

    workbench compare RUN_A RUN_B           # two run folders (runs/<id>/), or a reference folder
    workbench run --quick --against notebooks/reference

A run folder holds <stem>/result.json per notebook; a reference folder holds <stem>.json files in
the plain form of `canonical` (committed for every notebook's quick mode in notebooks/reference/).
What is compared: every number a study's cells computed (accuracies, recalls, losses, counts,
curves) and its study-level numbers; timings, cache flags, labels and paths are not.

Tolerance: exact (0) when both runs come from the same environment (torch build, threads, CPU
instruction set and flags, architecture, device, numeric libraries: `ENVIRONMENT_KEYS`; a reference
file records the machine that wrote it, and one without that record counts as the machine that
checks it), else a relative tolerance (`--rtol`, default 5%) with an absolute floor (`--atol`,
default 0.02: one image in 50 of an accuracy), stated in the output.

Claims: where both sides' result.json carry a "claims" list (the claims ledger), every claim whose
verdict differs between the two runs is flagged ("CLAIM MCF-2: supported -> unresolved"; a claim
only one side states reads "absent" on the other) and counts as a difference. A side without
claims (an older run, a reference folder) is not compared on claims.

The exit code is 1 when any number is out of tolerance or missing on one side, or any claim's
verdict changed.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

DROP = re.compile(r"seconds|cached|^label$|^id$|^written$|^what$|^ratio_to_ft$|_items$")
CROSS_MACHINE_RTOL = 0.05
CROSS_MACHINE_ATOL = 0.02
# what float results depend on: the torch build, its thread count, the CPU's instruction set and feature
# flags, the architecture, the device, the versions of the libraries with numerics of their own
ENVIRONMENT_KEYS = ("torch", "threads", "cpu", "cpu_flags", "machine", "device", "libraries")


def strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if not DROP.search(str(k))}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def cell_key(method: Any, setting: Any, seed: Any) -> str:
    return f"{method}|{setting}|{seed}"


class ResultError(ValueError):
    """A result.json or reference file that cannot be compared: unreadable, truncated or of another layout."""


def canonical(result: dict, source: str | Path = "result") -> dict:
    """The numbers of a result.json that a rerun must reproduce, in one plain form; ResultError naming
    `source` when the result does not have the layout a study writes."""
    if not isinstance(result, dict):
        raise ResultError(f"{source} holds a JSON {type(result).__name__}; expected an object with 'rows'")
    rows = result.get("rows", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultError(f"{source}: 'rows' is not a list of objects (got {type(rows).__name__})")
    for i, r in enumerate(rows):
        missing = [k for k in ("method", "setting", "seed") if k not in r]
        if missing:
            raise ResultError(f"{source}: rows[{i}] lacks {', '.join(map(repr, missing))} (keys there: "
                              f"{', '.join(map(str, r)) or 'none'})")
        if not isinstance(r["method"], str):
            raise ResultError(f"{source}: rows[{i}] has method={r['method']!r}; accepted: a method id (a string)")
    keys = [cell_key(r["method"], r["setting"], r["seed"]) for r in rows]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ResultError(f"{source}: the cell {twice[0]} (method|setting|seed) has two rows; accepted: one row per "
                          "cell, as a study writes them (a second would hide the first from the comparison)")
    cells = {cell_key(r["method"], r["setting"], r["seed"]):
             strip({k: v for k, v in r.items() if k not in ("method", "setting", "seed")})
             for r in rows}
    study = {}
    if result.get("study") == "world_and_model":
        try:
            study = {"zero_shot_accuracy": result["metrics"]["zero_shot_accuracy"],
                     "per_class_heldout": result["tables"]["per_class_heldout"],
                     "confusion_ood_flipped": result["tables"]["confusion_ood_flipped"]}
        except (KeyError, TypeError) as e:
            raise ResultError(f"{source}: a world_and_model result without {e} (metrics.zero_shot_accuracy, "
                              "tables.per_class_heldout and tables.confusion_ood_flipped are compared)") from None
    return {"cells": cells, "study": study}


def _read_json(path: Path) -> Any:
    """The JSON in `path`, or ResultError naming the file (truncated, not text, not JSON)."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ResultError(f"{path} is not a text file; expected the JSON a workbench run writes") from None
    except OSError as e:
        raise ResultError(f"{path} cannot be read ({type(e).__name__}: {e.strerror or e})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ResultError(f"{path} nests its JSON too deeply to read ({len(text)} characters); accepted: the JSON a "
                          "workbench run writes: rerun the notebook or restore the file") from None
    except json.JSONDecodeError as e:
        raise ResultError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; "
                          f"{len(text)} characters): truncated or not written by the workbench; rerun the notebook "
                          "or restore the file") from None


def _environment(data: dict, path: Path) -> dict | None:
    env = data.get("environment")
    if env is not None and not isinstance(env, dict):
        raise ResultError(f"{path}: 'environment' is a JSON {type(env).__name__}; expected an object or null")
    return env


def flatten(obj: Any, prefix: str = "") -> Iterator[tuple[str, float | None]]:
    """(dotted key, number or None) for every numeric leaf; strings and booleans are skipped."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}[{i}]")
    elif obj is None:
        yield prefix, None
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield prefix, float(obj)


@dataclass
class Line:
    key: str
    a: float | None
    b: float | None
    tol: float

    @property
    def diff(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def ok(self) -> bool:
        if self.a is None or self.b is None:
            return self.a is None and self.b is None
        if math.isnan(self.a) or math.isnan(self.b):
            return math.isnan(self.a) and math.isnan(self.b)
        if math.isinf(self.a) or math.isinf(self.b):  # equal infinities agree; no tolerance reaches one
            return self.a == self.b
        return abs(self.b - self.a) <= self.tol


@dataclass
class ClaimChange:
    """A claim whose verdict differs between run A and run B ("absent": that run does not state it)."""

    id: str
    a: str
    b: str

    def __str__(self) -> str:
        return f"CLAIM {self.id}: {self.a} -> {self.b}"


@dataclass
class NotebookComparison:
    name: str
    lines: list[Line] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # "only in A: ..." / "only in B: ..."
    rtol: float = 0.0
    atol: float = 0.0
    claims: list[ClaimChange] = field(default_factory=list)  # verdicts that changed
    claims_note: str = ""  # "3 claims, 1 with a changed verdict" / "claims not compared (...)"

    @property
    def ok(self) -> bool:
        return not self.missing and not self.claims and all(line.ok for line in self.lines)


def _load(folder: Path, stem: str) -> tuple[dict, dict | None] | None:
    """(canonical numbers, environment) of notebook `stem` in a run folder or a reference folder."""
    result = folder / stem / "result.json"
    if result.is_file():
        data = _read_json(result)
        numbers = canonical(data, result)
        return numbers, _environment(data, result)
    ref = folder / f"{stem}.json"
    if ref.is_file():
        data = _read_json(ref)
        if not isinstance(data, dict):
            raise ResultError(f"{ref} holds a JSON {type(data).__name__}; expected a reference object with "
                              "'cells' and 'study'")
        env = _environment(data, ref)
        data = {k: v for k, v in data.items() if k != "environment"}
        missing = [k for k in ("cells", "study") if not isinstance(data.get(k), dict)]
        if missing:
            raise ResultError(f"{ref} is not a reference file: no {' and no '.join(map(repr, missing))} object "
                              f"(keys there: {', '.join(map(str, data)) or 'none'})")
        return data, env
    return None


def claim_verdicts(folder: Path, stem: str) -> dict[str, str] | None:
    """Claim id -> verdict of notebook `stem` in a run folder (or a reference file that carries claims);
    None when its result.json has no "claims" list (written before the ledger) or is not there."""
    for path in (folder / stem / "result.json", folder / f"{stem}.json"):
        if path.is_file():
            data = _read_json(path)
            claims = data.get("claims") if isinstance(data, dict) else None
            if claims is None:
                return None
            if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
                raise ResultError(f"{path}: 'claims' is a JSON {type(claims).__name__}"
                                  f"{'' if not isinstance(claims, list) else ' holding other things than objects'}; "
                                  "accepted: a list of claim objects (as a study writes them) or none")
            return {str(c.get("id")): str(c.get("verdict")) for c in claims}
    return None


def claim_changes(a: dict[str, str], b: dict[str, str]) -> list[ClaimChange]:
    """Every claim whose verdict differs, in A's order then B's new ones."""
    ids = [*a, *(k for k in b if k not in a)]
    return [ClaimChange(k, a.get(k, "absent"), b.get(k, "absent")) for k in ids if a.get(k) != b.get(k)]


def reference_environment(folder: str | Path, stem: str) -> dict | None:
    """The environment a reference (or a run) of notebook `stem` was recorded in; None when not recorded."""
    loaded = _load(Path(folder), stem)
    return None if loaded is None else loaded[1]


def notebooks_in(folder: Path) -> list[str]:
    """The notebook stems a run folder (<stem>/result.json) or a reference folder (<stem>.json) holds."""
    stems = {p.parent.name for p in folder.glob("*/result.json")} | {p.stem for p in folder.glob("[0-9][0-9]_*.json")}
    return sorted(stems)


def same_environment(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return True  # a reference file without a record: the machine that checks it
    return all(a.get(k) == b.get(k) for k in ENVIRONMENT_KEYS)


def compare(run_a: str | Path, run_b: str | Path, rtol: float | None = None, atol: float | None = None,
            notebooks: list[str] | None = None, across: tuple[float, float] = (CROSS_MACHINE_RTOL, CROSS_MACHINE_ATOL),
            ) -> list[NotebookComparison]:
    """Every metric of every notebook of `run_b` against `run_a` (a reference when it is one).

    `rtol` / `atol` given: that tolerance everywhere. Else exact within one environment and
    `across` (rtol, atol) between two. A result or reference file that cannot be read or has another
    layout raises ResultError (a ValueError) naming the file. Equal infinities and NaN against NaN
    agree; an infinity against anything else does not, whatever the tolerance."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                      and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={value!r}; accepted: a finite number >= 0, or None (exact within one "
                             "environment, the cross-machine tolerance between two)")
    if isinstance(notebooks, str):
        raise ValueError(f"notebooks={notebooks!r} is one string; accepted: a list of notebook stems")
    run_a, run_b = Path(run_a), Path(run_b)
    for folder in (run_a, run_b):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; give a run folder (runs/<id>) or a reference "
                                    "folder (notebooks/reference)")
    for folder in (run_a, run_b):
        if not notebooks_in(folder):  # an empty folder, or one above the runs: every notebook would be "missing"
            raise FileNotFoundError(f"{folder} is not a run folder: it holds no <notebook>/result.json and no "
                                    "NN_*.json; give a run folder (runs/<id>) or a reference folder "
                                    "(notebooks/reference)")
    stems = notebooks or notebooks_in(run_b)
    out = []
    for stem in stems:
        a, b = _load(run_a, stem), _load(run_b, stem)
        cmp = NotebookComparison(stem)
        if a is None or b is None:
            cmp.missing.append(f"{stem} is not in {run_a if a is None else run_b}")
            out.append(cmp)
            continue
        exact = same_environment(a[1], b[1])
        cmp.rtol = (0.0 if exact else across[0]) if rtol is None else rtol
        cmp.atol = (0.0 if exact else across[1]) if atol is None else atol
        fa, fb = dict(flatten(a[0])), dict(flatten(b[0]))
        cmp.missing += [f"only in A: {k}" for k in fa if k not in fb]
        cmp.missing += [f"only in B: {k}" for k in fb if k not in fa]
        for key in (k for k in fa if k in fb):
            va, vb = fa[key], fb[key]
            scale = max([abs(v) for v in (va, vb) if v is not None and math.isfinite(v)], default=0.0)
            cmp.lines.append(Line(key, va, vb, max(cmp.atol, cmp.rtol * scale)))
        ca, cb = claim_verdicts(run_a, stem), claim_verdicts(run_b, stem)
        if ca is not None and cb is not None:
            cmp.claims = claim_changes(ca, cb)
            n = len({*ca, *cb})
            cmp.claims_note = f"{n} claim{'s' if n != 1 else ''}, {len(cmp.claims)} with a changed verdict"
        elif ca is not None or cb is not None:
            cmp.claims_note = f"claims not compared (only {'A' if cb is None else 'B'} states claims)"
        out.append(cmp)
    return out


def report(comparisons: list[NotebookComparison], show: str = "all") -> str:
    """Side by side: key, A, B, difference, tolerance; '!!' marks what is out of tolerance; a line
    "CLAIM <id>: <verdict in A> -> <verdict in B>" per claim whose verdict changed."""
    lines = []
    for c in comparisons:
        tol = "exact" if c.rtol == 0 and c.atol == 0 else f"rtol {c.rtol:g}, atol {c.atol:g}"
        bad = sum(not ln.ok for ln in c.lines) + len(c.missing)
        claims = f"; {c.claims_note}" if c.claims_note else ""
        lines.append(f"== {c.name}: {len(c.lines)} numbers, {bad} out of tolerance ({tol}){claims}")
        lines += [str(change) for change in c.claims]
        width = max((len(ln.key) for ln in c.lines), default=10)
        for ln in c.lines:
            if show == "failures" and ln.ok:
                continue
            diff = "" if ln.diff is None else f"{ln.diff:+.3g}"
            lines.append(f"{'  ' if ln.ok else '!!'} {ln.key:{width}}  {_number(ln.a):>12}  {_number(ln.b):>12}  "
                         f"{diff:>10}  tol {ln.tol:.3g}")
        lines += [f"!! {m}" for m in c.missing]
    verdict = "SAME" if all(c.ok for c in comparisons) else "DIFFERENT"
    changed = sum(len(c.claims) for c in comparisons)
    lines.append(f"{verdict}: {sum(c.ok for c in comparisons)}/{len(comparisons)} notebooks within tolerance"
                 + (f"; {changed} claim{'s' if changed != 1 else ''} changed verdict" if changed else ""))
    return "\n".join(lines)


def _number(v: float | None) -> str:
    return "None" if v is None else f"{v:.6g}"


def write_reference(run_dir: str | Path, out: str | Path) -> list[Path]:
    """<out>/<stem>.json (the canonical numbers and the environment that made them) for every notebook
    of a run: a reference to publish."""
    from workbench.studies.kit import write_json_atomic

    run_dir, out = Path(run_dir), Path(out)
    written = []
    for stem in notebooks_in(run_dir):
        numbers, env = _load(run_dir, stem)
        env = {k: env.get(k) for k in ENVIRONMENT_KEYS} if env else None
        written.append(write_json_atomic(out / f"{stem}.json", {**numbers, "environment": env}))
    return written
