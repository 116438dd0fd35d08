"""Notebook 02 runs headlessly in quick mode, writes its tables, findings and every figure."""
import json

import pytest
import torch

from workbench import compare
from workbench.models import TINY_DIR
from workbench.runner import NOTEBOOKS_DIR

FIGURES = {"convergence", "metric_vs_params", "rank_curve", "token_norms", "factors", "mode_vectors"}


@pytest.mark.slow
def test_notebook_02_quick(tmp_path, monkeypatch):
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

    summary = run_notebooks(["02"], quick=True, params=params, runs_dir=tmp_path / "runs", progress=False)
    assert summary.ok, summary.verdict() + "\n" + (summary.results[0].traceback or "")
    res = summary.results[0]
    result = json.loads((res.output_dir / "result.json").read_text())
    if not params:  # the shipped weights: exactly the committed reference (recorded before the study-kit refactor)
        [same] = compare.compare(NOTEBOOKS_DIR / "reference", summary.run_dir, notebooks=[res.name])
        assert same.ok, compare.report([same], show="failures")
    assert result["config"]["steps"] == 4 and result["config"]["ranks"] == [2, 8]  # quick mode reached the study
    methods = {r["method"] for r in result["tables"]["methods"]}
    assert methods == set(result["config"]["methods"])
    assert result["metrics"]["cells_trained"] == len(result["rows"])  # fresh cache: all trained
    assert result["tables"]["real_scale"] and result["findings"]
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
