"""Notebook 04 runs headlessly in quick mode, writes its tables, findings and every figure."""
import json

import pytest
import torch

from workbench.models import TINY_DIR
from workbench.studies import module_selection as study

FIGURES = {"module_graphs", "gap_vs_k", "r1_vs_k", "cosine_distributions", "embedding_map", "direction",
           "score_vs_cost", "mind_the_gap"}


@pytest.mark.slow
def test_notebook_04_quick(tmp_path, monkeypatch):
    from workbench.runner import run_notebooks

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # the kernel inherits it: a fresh sweep
    params = {}
    if not (TINY_DIR / "open_clip_config.json").is_file():  # before data/tiny-world-clip exists
        from workbench.models import build_tiny
        from workbench.pretrain import PretrainConfig, save_tiny

        torch.manual_seed(0)
        (tmp_path / "tiny").mkdir()
        save_tiny(build_tiny(), PretrainConfig(), tmp_path / "tiny")
        params["pretrained"] = str(tmp_path / "tiny")

    summary = run_notebooks(["04"], quick=True, params=params, runs_dir=tmp_path / "runs", progress=False)
    assert summary.ok, summary.verdict() + "\n" + (summary.results[0].traceback or "")
    res = summary.results[0]
    result = json.loads((res.output_dir / "result.json").read_text())
    quick = study.Config.preset(quick=True)
    assert result["config"]["steps"] == quick.steps and result["config"]["shared_layers"] == list(quick.shared_layers)
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert {r["setting"] for r in result["tables"]["k_sweep"]} == set(quick.shared_layers)
    assert {r["task"] for r in result["tables"]["paths"]} == set(quick.tasks)
    assert result["tables"]["shift"] and result["tables"]["temperature"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
