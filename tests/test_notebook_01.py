"""Notebook 01 runs headlessly in quick mode, writes its numbers and every figure."""
import ast
import json
from pathlib import Path

import nbformat
import pytest
import torch

from tests.reference_check import assert_matches_reference
from workbench.models import TINY_DIR
from workbench.studies import cam_counterfactual as study

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_cam_counterfactual_masking.ipynb"
FIGURES = {"id_vs_ood", "accuracy_per_split", "training_loss", "cam_gallery", "cams_per_model", "counterfactuals",
           "real_photos_masking"}


def _parameters() -> dict:
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}


def test_parameters_match_the_study_defaults():
    params, defaults = _parameters(), study.Config()
    assert {"output_dir", "quick", "model", "pretrained", "train_dir", "id_test_dir", "ood_dirs"} <= set(params)
    for name, value in params.items():
        if value is not None and hasattr(defaults, name):  # None defers to the study (and its quick preset)
            default = getattr(defaults, name)
            assert default == value, f"notebook {name}={value!r}, study default {default!r}"


@pytest.mark.slow
def test_notebook_01_quick(tmp_path, monkeypatch, reference_threads):
    from workbench.runner import run_notebooks

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # the kernel inherits it: no stale cache
    reference_threads("01")
    params = {}
    if not (TINY_DIR / "open_clip_config.json").is_file():  # before data/tiny-world-clip exists: random weights
        from workbench.models import build_tiny
        from workbench.pretrain import PretrainConfig, save_tiny

        torch.manual_seed(0)
        (tmp_path / "tiny").mkdir()
        save_tiny(build_tiny(), PretrainConfig(), tmp_path / "tiny")
        params["pretrained"] = str(tmp_path / "tiny")
    summary = run_notebooks(["01"], quick=True, params=params, runs_dir=tmp_path / "runs", progress=False)
    assert summary.ok, summary.verdict() + "\n" + (summary.results[0].traceback or "")
    res = summary.results[0]
    result = json.loads((res.output_dir / "result.json").read_text())
    if not params:  # the shipped weights: the committed reference (exact in its environment)
        assert_matches_reference(summary, res)
    assert result["study"] == "cam_counterfactual" and result["config"]["seeds"] == [0]  # quick reached the study
    methods = {r["method"] for r in result["tables"]["results"]}
    assert methods == {"zero_shot", *study.METHODS}
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
    assert result["findings"].startswith("tiny-world-clip")
