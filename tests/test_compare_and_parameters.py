"""Reproducibility as a command (`workbench compare`, `run --against`) and -p values checked
against the parameters cell before anything runs, arriving with their types (tuples, sets)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_runner import HEADER, write_notebooks
from workbench import compare, runner
from workbench.cli import main

TYPED = HEADER + '''
# %% tags=["parameters"]
output_dir = None
quick = False
ranks = (1, 2)
names = None
w = 30.0
tag = "x"

# %%
import json, pathlib
out = pathlib.Path(output_dir)
seen = {"ranks": type(ranks).__name__, "names": type(names).__name__, "w": type(w).__name__}
rows = [{"method": "m", "setting": r, "seed": 0, "acc": w / 100 + r / 10} for r in ranks]
(out / "result.json").write_text(json.dumps({"study": "typed", "rows": rows, "seen": seen}))
'''


ENV = {"torch": "x", "threads": 2, "cpu": "AVX2", "cpu_flags": "ab12", "machine": "x86_64", "libraries": {"numpy": "2"},
       "platform": "p", "device": "cpu"}


def _result(rows) -> dict:
    return {"study": "toy", "rows": rows, "environment": ENV}


def _run(folder: Path, stem: str, rows, env=None) -> Path:
    (folder / stem).mkdir(parents=True, exist_ok=True)
    data = _result(rows)
    if env:
        data["environment"] = env
    (folder / stem / "result.json").write_text(json.dumps(data))
    return folder


ROWS = [{"method": "m", "setting": None, "seed": 0, "acc": 0.5, "train_seconds": 3.0, "cached": False,
         "history": [{"step": 1, "loss": 2.0}]}]


def test_identical_runs_compare_same_and_timings_do_not_count(tmp_path, capsys):
    a = _run(tmp_path / "a", "01_x", ROWS)
    b = _run(tmp_path / "b", "01_x", [{**ROWS[0], "train_seconds": 9.0, "cached": True}])
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "SAME: 1/1" in out and "cells.m|None|0.acc" in out and "exact" in out and "seconds" not in out


def test_a_changed_number_fails_and_is_named(tmp_path, capsys):
    a = _run(tmp_path / "a", "01_x", ROWS)
    b = _run(tmp_path / "b", "01_x", [{**ROWS[0], "history": [{"step": 1, "loss": 2.0000001}]}])
    assert main(["compare", str(a), str(b), "--failures"]) == 1
    out = capsys.readouterr().out
    assert "!! cells.m|None|0.history[0].loss" in out and "DIFFERENT" in out
    c = _run(tmp_path / "c", "01_x", [{**ROWS[0], "acc": None}])
    [cmp] = compare.compare(a, c)
    assert not cmp.ok  # a number on one side, None on the other


def test_across_machines_a_stated_tolerance_applies(tmp_path):
    a = _run(tmp_path / "a", "01_x", ROWS)
    other = {"torch": "y", "threads": 16, "platform": "q", "device": "cuda"}
    b = _run(tmp_path / "b", "01_x", [{**ROWS[0], "acc": 0.51}], env=other)
    [cmp] = compare.compare(a, b)
    assert cmp.ok and cmp.rtol == compare.CROSS_MACHINE_RTOL and cmp.atol == compare.CROSS_MACHINE_ATOL
    assert "rtol 0.05, atol 0.02" in compare.report([cmp])
    [strict] = compare.compare(a, b, rtol=0.0, atol=0.0)
    assert not strict.ok


def test_missing_notebooks_and_cells_fail(tmp_path, capsys):
    a = _run(tmp_path / "a", "01_x", ROWS)
    b = _run(tmp_path / "b", "01_x", ROWS + [{**ROWS[0], "seed": 1}])
    _run(b, "02_y", ROWS)
    results = compare.compare(a, b)
    assert [c.ok for c in results] == [False, False]
    assert any("only in B: cells.m|None|1.acc" in m for m in results[0].missing)
    assert main(["compare", str(a), str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_reference_folder_and_write_reference(tmp_path):
    run = _run(tmp_path / "run", "01_x", ROWS)
    [path] = compare.write_reference(run, tmp_path / "ref")
    assert path.name == "01_x.json"
    [cmp] = compare.compare(tmp_path / "ref", run)
    assert cmp.ok and cmp.rtol == 0.0 and cmp.lines
    recorded = compare.reference_environment(tmp_path / "ref", "01_x")
    assert recorded == {k: ENV[k] for k in compare.ENVIRONMENT_KEYS}  # the kernel version string is not kept
    assert "environment" not in json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("key,value", [("threads", 1), ("cpu", "AVX512"), ("cpu_flags", "cd34"), ("torch", "y"),
                                       ("machine", "aarch64"), ("libraries", {"numpy": "3"})])
def test_a_reference_from_another_environment_gets_the_tolerance(tmp_path, key, value):
    run = _run(tmp_path / "run", "01_x", ROWS)
    compare.write_reference(run, tmp_path / "ref")
    other = _run(tmp_path / "other", "01_x", [{**ROWS[0], "acc": 0.5000001}], env={**ENV, key: value})
    [cmp] = compare.compare(tmp_path / "ref", other)
    assert cmp.ok and cmp.rtol == compare.CROSS_MACHINE_RTOL  # last digits move with threads or CPU
    same = _run(tmp_path / "same", "01_x", [{**ROWS[0], "acc": 0.5000001}], env={**ENV, "platform": "q"})
    [exact] = compare.compare(tmp_path / "ref", same)
    assert not exact.ok and exact.rtol == 0.0  # same environment (a kernel update aside): exact


def test_a_reference_without_an_environment_is_exact_on_the_checking_machine(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "01_x.json").write_text(json.dumps(compare.canonical(_result(ROWS))))
    assert compare.reference_environment(tmp_path / "ref", "01_x") is None
    [cmp] = compare.compare(tmp_path / "ref", _run(tmp_path / "run", "01_x", ROWS, env={**ENV, "threads": 7}))
    assert cmp.ok and cmp.rtol == 0.0


@pytest.mark.parametrize("argv,match", [
    (["-p", "w", "abc"], "-p w 'abc': 05_typed expects float .*w = 30.0.*got str"),
    (["-p", "ranks", "[1, 2"], "-p ranks '\\[1, 2' is not a valid Python literal"),
    (["-p", "ranks", "3"], "expects a tuple or list .*got int"),
    (["-p", "tag", "True"], "expects str .*got bool"),
    (["-p", "nope", "1"], "unknown parameter 'nope'.*ranks, names, w, tag"),
])
def test_bad_parameters_exit_2_before_anything_runs(tmp_path, capsys, argv, match):
    import re

    nbs = write_notebooks(tmp_path / "nbs", {"05_typed": TYPED})
    code = main(["run", "--no-progress", "--notebooks-dir", str(nbs), "--runs-dir", str(tmp_path / "runs"), *argv])
    assert code == 2 and re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_ints_stand_for_floats_and_none_takes_anything():
    runner.check_parameter("nb", "w", 3, "30.0")
    runner.check_parameter("nb", "names", ("a",), "None")
    runner.check_parameter("nb", "ranks", [1], "(1, 2)")


@pytest.mark.slow
def test_tuples_and_sets_arrive_as_tuples_and_sets_and_against_checks(tmp_path, capsys):
    nbs = write_notebooks(tmp_path / "nbs", {"05_typed": TYPED})
    args = ["run", "--no-progress", "--notebooks-dir", str(nbs), "-p", "ranks", "(8, 32)", "-p", "names", "{'a', 'b'}"]
    assert main([*args, "--runs-dir", str(tmp_path / "runs")]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    result = json.loads((run_dir / "05_typed" / "result.json").read_text())
    assert result["seen"] == {"ranks": "tuple", "names": "set", "w": "float"}
    assert [r["setting"] for r in result["rows"]] == [8, 32]
    capsys.readouterr()
    assert main([*args, "--runs-dir", str(tmp_path / "runs2"), "--against", str(run_dir)]) == 0
    assert "SAME: 1/1" in capsys.readouterr().out
    assert main([*args[:-3], "-p", "w", "31.0", "--runs-dir", str(tmp_path / "runs3"), "--against", str(run_dir)]) == 1
