"""Notebook 02 runs headlessly in quick mode, writes its tables, findings and every figure."""

import pytest

from tests.reference_check import assert_matches_reference

FIGURES = {"convergence", "metric_vs_params", "rank_curve", "token_norms", "factors", "mode_vectors"}


@pytest.mark.slow
def test_notebook_02_quick(run_quick):
    summary, res, result, params = run_quick("02")
    if not params:  # the shipped weights: the committed reference (exact in its environment)
        assert_matches_reference(summary, res)
    assert result["config"]["steps"] == 4 and result["config"]["ranks"] == [2, 8]  # quick mode reached the study
    methods = {r["method"] for r in result["tables"]["methods"]}
    assert methods == set(result["config"]["methods"])
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert result["tables"]["real_scale"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
