"""Notebook 02 runs headlessly in quick mode, writes its tables, findings and every figure."""

import pytest

from workbench import compare
from workbench.runner import NOTEBOOKS_DIR

FIGURES = {"convergence", "metric_vs_params", "rank_curve", "token_norms", "factors", "mode_vectors"}


@pytest.mark.slow
def test_notebook_02_quick(run_quick):
    summary, res, result, params = run_quick("02")
    if not params:  # the shipped weights: exactly the committed reference (recorded before the study-kit refactor)
        [same] = compare.compare(NOTEBOOKS_DIR / "reference", summary.run_dir, notebooks=[res.name])
        assert same.ok, compare.report([same], show="failures")
    assert result["config"]["steps"] == 4 and result["config"]["ranks"] == [2, 8]  # quick mode reached the study
    methods = {r["method"] for r in result["tables"]["methods"]}
    assert methods == set(result["config"]["methods"])
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert result["tables"]["real_scale"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
