"""Notebook 04 runs headlessly in quick mode, writes its tables, findings and every figure."""

import pytest

from tests.reference_check import assert_matches_reference
from workbench.studies import module_selection as study

FIGURES = {"module_graphs", "gap_vs_k", "r1_vs_k", "cosine_distributions", "embedding_map", "direction",
           "score_vs_cost", "mind_the_gap"}


@pytest.mark.slow
def test_notebook_04_quick(run_quick):
    summary, res, result, params = run_quick("04")
    if not params:  # the shipped weights: the committed reference (exact in its environment)
        assert_matches_reference(summary, res)
    quick = study.Config.preset(quick=True)
    assert result["config"]["steps"] == quick.steps and result["config"]["shared_layers"] == list(quick.shared_layers)
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert {r["setting"] for r in result["tables"]["k_sweep"]} == set(quick.shared_layers)
    assert {r["task"] for r in result["tables"]["paths"]} == set(quick.tasks)
    assert result["tables"]["shift"] and result["tables"]["temperature"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
