"""Notebook 03 runs headlessly in quick mode, writes its tables, findings and every figure."""

import pytest

from tests.reference_check import assert_matches_reference

FIGURES = {"usage_histograms", "codebook_over_training", "purity", "code_timeline", "code_map_class",
           "code_map_modality", "code_exemplars", "usage_histograms_plain_vq", "loss_grad_norms"}


@pytest.mark.slow
def test_notebook_03_quick(run_quick):
    summary, res, result, params = run_quick("03")
    if not params:  # the shipped weights: the committed reference (exact in its environment)
        assert_matches_reference(summary, res)
    from workbench.studies.codebook import QUICK

    assert result["config"]["n_train"] == QUICK["n_train"] and result["config"]["seeds"] == [0, 1]  # quick mode
    methods = {r["method"] for r in result["tables"]["methods"]}
    assert methods == set(result["config"]["methods"])
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert result["tables"]["paper"] and result["tables"]["transfer_unicode"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
