"""CONTRIBUTING.md's examples run as written: a method added to study 02, a toy study on the kit."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from workbench.studies import kit

GUIDE = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()


def block(name: str) -> str:
    match = re.search(rf"<!-- test: {name} -->\n```python\n(.*?)```", GUIDE, re.S)
    assert match, f"CONTRIBUTING.md has no python block tagged 'test: {name}'"
    return match.group(1)


def test_the_method_example_registers_and_trains(tiny_random, tmp_path, monkeypatch):
    from workbench.studies import cp_rank_ablation as s
    from workbench.studies.cp_rank_ablation import methods

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    exec(block("method"), vars(methods))
    try:
        cfg = s.Config(methods=("zero_shot", "ln_tuning"), seeds=(0,), steps=2, batch_size=8, n_eval=16,
                       n_heldout=8, real_scale="off")
        result = s.run(cfg, output_dir=tmp_path / "out", model=tiny_random, progress=False)
        row = next(r for r in result.table if r["method"] == "ln_tuning")
        layer_norm = sum(p.numel() for m in tiny_random.modules() if m.__class__.__name__ == "LayerNorm"
                         for p in m.parameters())
        assert row["label"] == "LayerNorm tuning" and row["trainable"] == layer_norm
    finally:
        methods.METHODS._methods.pop("ln_tuning", None)


@pytest.mark.slow
def test_the_toy_study_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "prompt_templates.py"
    path.write_text(block("study"))
    spec = importlib.util.spec_from_file_location("prompt_templates", path)
    study = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "prompt_templates", study)  # dataclasses look their module up
    spec.loader.exec_module(study)
    result = study.STUDY.run(study.STUDY.preset(quick=True), output_dir=tmp_path / "out", progress=False)
    assert {(r["method"], r["seed"]) for r in result.rows} == {(m, s) for m in study.METHODS for s in (0, 1)}
    assert all(0.0 <= r["accuracy"] <= 1.0 and len(r["accuracy_items"]) == 24 for r in result.rows)
    [claim] = result.claims
    assert claim["id"] == "PT-1" and claim["seeds"] == 2 and claim["verdict"] in kit.claims.VERDICTS
    assert "[PT-1]" in result.findings and (tmp_path / "out" / "result.json").is_file()
    with pytest.raises(ValueError, match="accepted: first_template, all_templates"):
        study.Config(methods=("best_template",))
