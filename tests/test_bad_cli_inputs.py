"""`workbench run` refuses a bad -p value or option with exit 2, naming it, before any notebook starts:
no code runs from a value, and the study's Config checks every value (type, range, duplicates) first.
Folders too: a --runs-dir or WORKBENCH_CACHE that cannot be written, a RUN that is not a run folder (one
line, exit 2, within seconds); a disk that runs out of room stops the run with one line naming the file."""
from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest

from tests.disks import file_size_limit
from tests.waiting import within
from workbench import cli
from workbench.runner import parse_value

REPO = Path(__file__).resolve().parents[1]
NB = ["--notebooks-dir", str(REPO / "notebooks")]

INJECT = "b'x\"; open(\"marker\", \"w\").write(\"1\"); y = \"'"

CASES = [
    # (argv after `run`, a fragment the message must hold)
    (["00", "--quick", "-p", "pretrained", INJECT], "bytes"),
    (["00", "--quick", "-p", "pretrained", f"('a', {INJECT})"], "bytes"),
    (["00", "--quick", "-p", "pretrained", f"{{'k': {INJECT}}}"], "bytes"),
    (["02", "-p", "lr", "1j"], "complex"),
    (["02", "-p", "steps", "2.5"], "steps=2.5"),
    (["02", "-p", "seeds", "('a', 'b')"], "seeds=('a', 'b')"),
    (["02", "-p", "seeds", "(0, 0, 0)"], "given twice"),
    (["02", "-p", "claim_seeds", "(3, 3)"], "given twice"),
    (["02", "-p", "seeds", "(-1,)"], "seeds=(-1,)"),
    (["02", "-p", "methods", "('dora',)"], "dora"),
    (["02", "-p", "methods", "('lora', 'lora')"], "given twice"),
    (["03", "-p", "codebook_sizes", "(16, 'x')"], "codebook_sizes"),
    (["04", "-p", "steps", "'ten'"], "steps='ten'"),
    (["01", "-p", "lr", "'inf'"], "lr='inf'"),
    (["01", "-p", "w", "-1.0"], "w=-1.0"),
    (["00", "--timeout", "1.5"], "1.5"),
    (["00", "--budget", "5"], "--budget"),
    (["00", "--until-resolved", "--budget", "-3"], "-3"),
    (["02", "-p", "ranks", "[1, 2"], "[1, 2"),
    # issue 26, the second probe: ranges, names and files the Configs declare, the notebooks' own parameters
    (["01", "-p", "n_examples", "-5"], "01_cam_counterfactual_masking: n_examples=-5; accepted: an integer >= 1"),
    (["01", "-p", "n_localization", "0"], "n_localization=0; accepted: None or an integer >= 1"),
    (["02", "-p", "lr", "-0.1"], "02_cp_rank_ablation: Config.lr=-0.1; accepted: a finite number > 0"),
    (["03", "-p", "codes", "1"], "Config.codes=1; accepted: an integer >= 2"),
    (["00", "-p", "seed", "-1"], "00_world_and_model: Config.seed=-1"),
    (["00", "-p", "world_seed", "-1"], "Config.world_seed=-1"),
    (["01", "-p", "model", "nope"], "unknown model 'nope'; accepted: 'tiny-world-clip'"),
    (["01", "-p", "pretrained", "/nonexistent/w.pt"], "pretrained='/nonexistent/w.pt' does not exist"),
    (["00", "--timeout", "0"], "--timeout 0"),
    (["00", "--until-resolved", "--budget", "nan"], "--budget nan"),
    (["00", "--until-resolved", "--budget", "inf"], "--budget inf"),
    (["02", "-p", "seeds", "()"], "give at least one seed"),
    ([""], "no such notebook: ''"),
    (["00", "-p", "", "1"], "unknown parameter ''"),
    (["02", "-p", "keep_rank", "0"], "unknown parameter 'keep_rank'"),
    (["02", "-p", "device", "gpu"], "unknown parameter 'device'"),
    (["02", "-p", "methods", "[]"], "give at least one method id"),
    (["01", "-p", "w", "nan"], "-p w 'nan'"),
    (["03", "-p", "p_background", "nan"], "p_background='nan'"),
    (["04", "-p", "n_eval", "1"], "n_eval=1"),
    (["01", "-p", "model", "__import__('os').system('touch marker')"], "unknown model"),
    (["01", "-p", "model", "x\"; open('marker', 'w').write('1'); y=\""], "unknown model"),
    (["01", "-p", "ood_dirs", "{'a\"; open(\"marker\", \"w\"); \"': '/x'}"], "needs train_dir and id_test_dir"),
]


@pytest.mark.parametrize("argv,fragment", CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_bad_run_input_exits_2_before_anything_runs(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a marker written by injected code would land here
    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(cli.main(["run", *argv, "--runs-dir", str(tmp_path / "runs")]))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert not (tmp_path / "marker").exists() and not (tmp_path / "runs").exists()  # nothing ran, nothing written


@pytest.mark.parametrize("text", ["b'x'", "(1, b'x')", "{'a': [1, b'y']}", "1j", "{1: 2j}", "..."])
def test_parse_value_accepts_only_plain_literals(text):
    with pytest.raises(ValueError, match="accepted: str, int, float, bool, None"):
        parse_value(text, "p")


@pytest.mark.parametrize("text,value", [("3", 3), ("0.5", 0.5), ("True", True), ("None", None), ("(8, 32)", (8, 32)),
                                        ("{'a': [1, 'b']}", {"a": [1, "b"]}), ("plain text", "plain text"),
                                        ("bar", "bar"), ("{1, 2}", {1, 2})])
def test_parse_value_keeps_plain_literals(text, value):
    assert parse_value(text, "p") == value


FOLDER_CASES = [
    # (argv, WORKBENCH_CACHE or None, the path the message names, a fragment it holds); {tmp}: see _folders
    (["run", "00", "--runs-dir", "{tmp}/file"], None, "{tmp}/file", "is a file, not a folder"),
    (["run", "00", "--runs-dir", "{tmp}/file/runs"], None, "{tmp}/file/runs", "a part of it is a file"),
    (["run", "00", "--runs-dir", "{tmp}/loop"], None, "{tmp}/loop", "loop of symlinks"),
    (["run", "00", "--runs-dir", "{tmp}/dangling"], None, "{tmp}/dangling", "symlink to nowhere"),
    (["run", "00", "--runs-dir", "/sys"], None, "/sys", "cannot be written"),  # read-only, for root too
    (["run", "00", "--runs-dir", "/proc/workbench-runs"], None, "/proc/workbench-runs", "cannot be made"),
    (["run", "00", "--against", "{tmp}/empty"], None, "{tmp}/empty", "holds no <notebook>/result.json"),
    (["run", "00", "--against", "{tmp}/file"], None, "{tmp}/file", "not a folder"),
    (["run", "00"], "", "WORKBENCH_CACHE=''", "is empty"),
    (["run", "00"], " ", "WORKBENCH_CACHE=' '", "is empty"),
    (["run", "00"], "{tmp}/file", "{tmp}/file", "is a file, not a folder"),
    (["run", "00"], "file/cache", "{tmp}/file/cache", "a part of it is a file"),  # relative: from the cwd
    (["compare", "{tmp}/file", "{tmp}/run"], None, "{tmp}/file", "is not a folder"),
    (["compare", "{tmp}/empty", "{tmp}/run"], None, "{tmp}/empty", "is not a run folder"),
    (["compare", "{tmp}/run/01_x", "{tmp}/run"], None, "{tmp}/run/01_x", "is not a run folder"),
    (["compare", "{tmp}/run", "{tmp}/loop"], None, "{tmp}/loop", "is not a folder"),
    (["claims", "{tmp}/file"], None, "{tmp}/file", "is not a folder"),
    (["claims", "{tmp}/loop"], None, "{tmp}/loop", "is not a folder"),
    (["claims", "{tmp}/run/01_x"], None, "{tmp}/run/01_x", "is not a run folder"),
    (["claims", "{tmp}/run", "--study", "nope"], None, "'nope'", "no claims of study"),
    (["claims", "{tmp}/run", "--study", "99"], None, "'99'", "accepted: a study with claims there"),
    (["pretrain", "--out", "{tmp}/file"], None, "{tmp}/file", "is a file, not a folder"),
    (["pretrain", "--out", "{tmp}/loop"], None, "{tmp}/loop", "loop of symlinks"),
    (["sweep", "02", "--quick", "--folder", "{tmp}/file"], "{tmp}/cache", "{tmp}/file", "is a file, not a folder"),
]


def _folders(tmp: Path) -> None:
    """tmp/file (a file), tmp/loop (a symlink to itself), tmp/dangling (to nothing), tmp/empty/ and tmp/run/01_x/ (one
    row, one claim)."""
    (tmp / "file").write_text("not a folder")
    (tmp / "loop").symlink_to("loop")
    (tmp / "dangling").symlink_to("nowhere")
    (tmp / "empty").mkdir()
    (tmp / "run" / "01_x").mkdir(parents=True)
    (tmp / "run" / "01_x" / "result.json").write_text(json.dumps({"rows": [{"method": "m", "setting": 1, "seed": 0,
                                                                           "acc": 0.5}], "study": "toy", "claims": [
        {"id": "T-1", "words": "a beats b", "a": "a", "b": "b", "metric": "acc", "verdict": "supported"}]}))


def _no_notebook(*args, **kwargs):
    raise AssertionError("a notebook started despite a bad folder")


@pytest.mark.parametrize("argv,cache,named,fragment", FOLDER_CASES,
                         ids=[" ".join(c[0])[:48] + ("" if c[1] is None else f" cache={c[1]!r}") for c in FOLDER_CASES])
def test_a_folder_that_cannot_serve_exits_2_in_one_line(argv, cache, named, fragment, tmp_path, capsys, monkeypatch):
    from workbench.runner import run

    _folders(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "execute_notebook", _no_notebook)
    if cache is None:
        monkeypatch.delenv("WORKBENCH_CACHE", raising=False)
    else:
        monkeypatch.setenv("WORKBENCH_CACHE", cache.replace("{tmp}", str(tmp_path)))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "run" and "--runs-dir" not in argv:
        argv += ["--runs-dir", str(tmp_path / "runs"), *NB]
    elif argv[0] == "run":
        argv += NB
    assert within(60, cli.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"workbench {argv[0]}: error:"), err
    assert named.replace("{tmp}", str(tmp_path)) in err and fragment in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/, no cache folder: nothing was made


def test_a_relative_cache_root_is_exported_absolute_to_the_kernels(tmp_path, monkeypatch):
    """WORKBENCH_CACHE=cache given in tmp: the kernels (cwd notebooks/) see tmp/cache, not notebooks/cache."""
    from workbench.runner import NotebookResult, run

    seen = {}

    def fake(path, out, parameters, cwd, progress=True, timeout=None):
        seen["cache"], seen["cwd"] = os.environ["WORKBENCH_CACHE"], cwd
        return NotebookResult(path.stem, "ok", 0.0, out, parameters=dict(parameters))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_CACHE", "cache")
    monkeypatch.setattr(run, "execute_notebook", fake)
    assert cli.main(["run", "00", "--no-progress", "--runs-dir", "runs", *NB]) == 0
    assert seen["cache"] == str(tmp_path / "cache") and Path(seen["cwd"]) != tmp_path
    assert os.environ["WORKBENCH_CACHE"] == str(tmp_path / "cache")  # from then on, whatever the cwd


def _run_out_of_room(tmp_path, capsys, monkeypatch, execute, limit=None):
    """`workbench run 00` with execute_notebook replaced (and writes past `limit` bytes failing): exit code, the
    error lines, the run folder."""
    from workbench.runner import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "execute_notebook", execute)
    argv = ["run", "00", "--no-progress", "--runs-dir", str(tmp_path / "runs"), *NB]
    if limit is None:
        rc = within(60, cli.main, argv)
    else:
        with file_size_limit(limit):
            rc = cli.main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    [run_dir] = (tmp_path / "runs").iterdir()
    return rc, err, run_dir


def test_a_full_disk_while_a_notebook_runs_stops_the_run_naming_the_notebook(tmp_path, capsys, monkeypatch):
    """papermill's copy of the executed notebook finds the disk full: the half-written copy goes, the run stops with
    one line naming the notebook (exit 1), and the report of what finished is still written."""
    import papermill

    from workbench.runner.execute import execute_notebook

    def half_then_full(input_path, output_path, **kwargs):
        Path(output_path).write_text('{"cells": [')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(papermill, "execute_notebook", half_then_full)
    rc, err, run_dir = _run_out_of_room(tmp_path, capsys, monkeypatch, execute_notebook)
    executed = run_dir / "00_world_and_model" / "00_world_and_model.ipynb"
    assert rc == 1 and err == [f"workbench run: error: could not write {executed}: No space left on device; no "
                               "partial file was left"], err
    assert list(executed.parent.iterdir()) == [] and (run_dir / "summary.md").is_file()


def test_a_file_size_limit_on_the_report_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    from workbench.runner import NotebookResult

    def quick(path, out, parameters, cwd, progress=True, timeout=None):
        return NotebookResult(path.stem, "ok", 0.0, out, parameters=dict(parameters))

    rc, err, run_dir = _run_out_of_room(tmp_path, capsys, monkeypatch, quick, limit=200)
    assert rc == 1 and len(err) == 1, err
    named = re.fullmatch(r"workbench run: error: could not write (\S+): File too large; no partial file was left",
                         err[0])
    assert named and Path(named[1]).parent == run_dir and not Path(named[1]).exists(), err
    assert not [p for p in run_dir.rglob("*") if p.name.startswith(".")], list(run_dir.rglob("*"))


def test_the_executed_notebook_is_renamed_into_place_whether_a_cell_fails_or_not(tmp_path, monkeypatch):
    """papermill writes under a temporary name beside the executed notebook (ending in .ipynb: papermill warns
    about any other), renamed into place when it stops: the copy with the error is the one the report links."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from workbench.runner import execute

    written = []

    def fake(input_path, output_path, **kwargs):
        written.append(Path(output_path))
        nbformat.write(nbformat.v4.new_notebook(), output_path)
        if len(written) == 2:
            raise PapermillExecutionError(0, 1, "1/0", "ZeroDivisionError", "division by zero", [])

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    monkeypatch.setattr(execute, "render_notebook_html", lambda executed: None)
    for status in ("ok", "failed"):
        res = execute.execute_notebook(tmp_path / "00_x.ipynb", tmp_path / status, {}, cwd=tmp_path, progress=False)
        assert res.status == status and [p.name for p in (tmp_path / status).iterdir()] == ["00_x.ipynb"]
    assert [p.parent.name for p in written] == ["ok", "failed"]
    assert all(p.name.startswith(".00_x.ipynb.") and p.suffix == ".ipynb" for p in written), written
