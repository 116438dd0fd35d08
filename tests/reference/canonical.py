"""The numbers of a study's result.json that must not move under a refactor, in one plain form.

    canonical(result_json) -> {"cells": {"method|setting|seed": {metric: value}}, "study": {...}}

Timings, cache flags, labels and paths are dropped; everything a cell computed is kept
(accuracies, recalls, losses along training, trainable counts, WiSE-FT curves).
"""
from __future__ import annotations

import re

DROP = re.compile(r"seconds|cached|^label$|^id$|^written$|^what$|^ratio_to_ft$")


def strip(obj):
    if isinstance(obj, dict):
        return {k: strip(v) for k, v in obj.items() if not DROP.search(str(k))}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def cell_key(method, setting, seed) -> str:
    return f"{method}|{setting}|{seed}"


def canonical(result: dict) -> dict:
    """The invariant numbers of a result.json written by the study kit."""
    cells = {cell_key(r["method"], r["setting"], r["seed"]):
             strip({k: v for k, v in r.items() if k not in ("method", "setting", "seed")})
             for r in result.get("rows", [])}
    study = {}
    if result["study"] == "world_and_model":
        study = {"zero_shot_accuracy": result["metrics"]["zero_shot_accuracy"],
                 "per_class_heldout": result["tables"]["per_class_heldout"],
                 "confusion_ood_flipped": result["tables"]["confusion_ood_flipped"]}
    return {"cells": cells, "study": study}


def assert_matches_reference(study_id: str, result: dict) -> None:
    """Every cell and study-level number of the reference is in `result` with exactly its value."""
    import json
    from pathlib import Path

    want = json.loads((Path(__file__).parent / "quick_metrics.json").read_text())[study_id]
    got = canonical(result)
    assert sorted(got["cells"]) == sorted(want["cells"]), "the grid of cells changed"
    for key, ref in want["cells"].items():
        cell = got["cells"][key]
        missing = sorted(set(ref) - set(cell))
        assert not missing, f"{key}: metrics {missing} are gone"
        diff = {k: (cell[k], v) for k, v in ref.items() if cell[k] != v}
        assert not diff, f"{key}: (now, before) {diff}"
    assert got["study"] == want["study"]
