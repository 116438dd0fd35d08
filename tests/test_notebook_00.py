"""Notebook 00 runs headlessly in quick mode, writes its numbers and every figure."""
import json

import pytest
import torch

from tests.reference_check import assert_matches_reference
from workbench.models import TINY_DIR

FIGURES = {"classes_and_contexts", "samples_per_split", "clips", "sounds", "zero_shot_accuracy",
           "per_class_heldout", "confusion_ood_flipped"}


@pytest.mark.slow
def test_notebook_00_quick(tmp_path, monkeypatch, reference_threads):
    from workbench.runner import run_notebooks

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))  # the kernel inherits it: no stale cache
    reference_threads("00")
    params = {}
    shipped = (TINY_DIR / "open_clip_config.json").is_file()
    if not shipped:  # before data/tiny-world-clip exists: the same notebook on random tiny weights
        from workbench.models import build_tiny
        from workbench.pretrain import PretrainConfig, save_tiny

        torch.manual_seed(0)
        (tmp_path / "tiny").mkdir()
        save_tiny(build_tiny(), PretrainConfig(), tmp_path / "tiny")
        params["pretrained"] = str(tmp_path / "tiny")

    summary = run_notebooks(["00"], quick=True, params=params, runs_dir=tmp_path / "runs", progress=False)
    assert summary.ok, summary.verdict() + "\n" + (summary.results[0].traceback or "")
    res = summary.results[0]
    result = json.loads((res.output_dir / "result.json").read_text())
    if not params:  # the shipped weights: the committed reference (exact in its environment)
        assert_matches_reference(summary, res)
    acc = result["metrics"]["zero_shot_accuracy"]
    assert set(acc) == {"heldout", "id_test", "ood_flipped", "ood_unseen", "ood_style"}
    assert all(0.0 <= a <= 1.0 for a in acc.values())
    assert result["config"]["n_eval"] == 200  # quick mode reached the study
    assert {p.stem for p in res.figures} == FIGURES
    assert {f.split("/")[-1].removesuffix(".png") for f in result["figures"]} == FIGURES
    if shipped:  # the shipped model learned the world, and the notebook shows its shipped numbers
        assert acc["heldout"] > 3 * result["metrics"]["chance"]["heldout"]
        assert result["metrics"]["reference_zero_shot_accuracy"] is not None
