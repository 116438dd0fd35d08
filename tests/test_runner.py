"""The headless runner and the CLI, on tiny fake notebooks written into tmp folders.

Kernel starts cost seconds, so one module-scoped run (three notebooks, one failing) feeds most
tests, and one more run (from a subprocess with a clean environment) checks run-folder
uniqueness and the kernel choice. Everything else runs without a kernel.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from workbench import runner
from workbench.cli import main

HEADER = """# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
"""

GOOD = HEADER + '''
# %% [markdown]
# # A notebook that works

# %% tags=["parameters"]
output_dir = None
quick = False
seed = 0
label = "x"

# %%
import json, os, pathlib
with open("order.txt", "a") as f:
    f.write("00_good\\n")
print("static outputs:", os.environ.get("WORKBENCH_STATIC"))
out = pathlib.Path(output_dir)
(out / "figures").mkdir(parents=True, exist_ok=True)
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [seed, 1])
fig.savefig(out / "figures" / "curve.png")

# %%
from IPython.display import display
from workbench.studies import kit
from workbench.viz.world import browser
from workbench.world import World
rows = kit.run_cells([kit.Cell("a", seed=s) for s in range(3)], lambda c: {"x": 1.0}, desc="cells")
display(browser(World(), splits=("heldout",), max_index=3))
kit.save_figure(fig, out, "curve2", caption="A curve.")

# %%
result = {"study": "good", "config": {"seed": seed, "label": label, "quick": quick},
          "metrics": {"accuracy": {"id": 0.75, "ood": 0.5}, "history": list(range(20))},
          "tables": {"per_split": [{"split": "id_test", "acc": 0.75}, {"split": "ood_flipped", "acc": 0.5}]},
          "findings": "OOD accuracy falls below ID <b>as expected</b>."}
(out / "result.json").write_text(json.dumps(result))
'''

BROKEN = HEADER + '''
# %%
with open("order.txt", "a") as f:
    f.write("01_broken\\n")

# %% tags=["parameters"]
output_dir = None
quick = False

# %%
ratio = 1 / 0

# %%
open("after_failure.txt", "w").write("must not run")
'''

OTHER = HEADER + '''
# %% tags=["parameters"]
output_dir = None
quick = False

# %%
import json, pathlib
with open("order.txt", "a") as f:
    f.write("02_other\\n")
pathlib.Path(output_dir, "result.json").write_text(json.dumps({"study": "other", "metrics": {"quick": quick}}))
'''


def write_notebooks(folder: Path, sources: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, text in sources.items():
        jupytext.write(jupytext.reads(text, fmt="py:percent"), folder / f"{stem}.ipynb")
    return folder


@pytest.fixture(scope="module")
def nb_dir(tmp_path_factory) -> Path:
    return write_notebooks(tmp_path_factory.mktemp("notebooks"),
                           {"00_good": GOOD, "01_broken": BROKEN, "02_other": OTHER})


@pytest.fixture(scope="module")
def first_run(nb_dir, tmp_path_factory):
    """`workbench run --quick -p seed 3 -p label hello` over all three notebooks (one fails)."""
    runs = tmp_path_factory.mktemp("runs")
    capture = tmp_path_factory.mktemp("capture")
    out, err = sys.stdout, sys.stderr
    with open(capture / "out", "w") as fo, open(capture / "err", "w") as fe:
        sys.stdout, sys.stderr = fo, fe
        try:
            code = main(["run", "--quick", "-p", "seed", "3", "-p", "label", "hello", "--no-progress",
                         "--notebooks-dir", str(nb_dir), "--runs-dir", str(runs)])
        finally:
            sys.stdout, sys.stderr = out, err
    (run_dir,) = runs.iterdir()
    return {"code": code, "runs": runs, "run_dir": run_dir, "stdout": (capture / "out").read_text(),
            "stderr": (capture / "err").read_text()}


@pytest.mark.slow
def test_runs_in_order_and_keeps_going_after_a_failure(first_run, nb_dir):
    assert (nb_dir / "order.txt").read_text().split() == ["00_good", "01_broken", "02_other"]
    assert not (nb_dir / "after_failure.txt").exists()  # nothing after the failing cell ran
    assert first_run["code"] == 1
    summary = json.loads((first_run["run_dir"] / "summary.json").read_text())
    assert [n["name"] for n in summary["notebooks"]] == ["00_good", "01_broken", "02_other"]
    assert [n["status"] for n in summary["notebooks"]] == ["ok", "failed", "ok"]
    assert summary["ok"] is False


@pytest.mark.slow
def test_failure_names_notebook_cell_and_exception(first_run):
    text = first_run["stdout"] + first_run["stderr"]
    assert "01_broken" in text and "cell 3 (In[" in text
    assert "ratio = 1 / 0" in text and "ZeroDivisionError" in text
    failed = json.loads((first_run["run_dir"] / "summary.json").read_text())["notebooks"][1]
    assert failed["failed_cell"] == 3
    executed = first_run["run_dir"] / "01_broken" / "01_broken.ipynb"
    assert executed.exists()  # the executed copy keeps the traceback for inspection


@pytest.mark.slow
def test_parameters_reach_only_the_notebooks_that_declare_them(first_run):
    run_dir = first_run["run_dir"]
    good = json.loads((run_dir / "00_good" / "result.json").read_text())
    assert good["config"] == {"seed": 3, "label": "hello", "quick": True}  # "3" parsed, "hello" kept as str
    other = json.loads((run_dir / "summary.json").read_text())["notebooks"][2]
    assert other["parameters"] == {"output_dir": str(run_dir / "02_other"), "quick": True}
    assert other["metrics"] == {"quick": True}


@pytest.mark.slow
def test_executed_notebooks_read_well(first_run):
    """No progress bar, no widget that needs a kernel, no stray path line: an explorer shows a picture."""
    import nbformat

    nb = nbformat.read(first_run["run_dir"] / "00_good" / "00_good.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if "browser(" in c.source]
    kinds = [set(o.get("data", {})) for o in cell.outputs if o.output_type == "display_data"]
    assert {"image/png"} <= kinds[0] and {"text/html"} <= kinds[1], kinds  # the first state, then its text
    assert not any("application/vnd.jupyter.widget-view+json" in k for k in kinds)
    text = json.dumps([o for c in nb.cells for o in c.get("outputs", [])])
    assert "PosixPath" not in text and "it/s" not in text and "cells:" not in text, text[:2000]


@pytest.mark.slow
def test_summary_has_tables_findings_figures(first_run):
    run_dir = first_run["run_dir"]
    md = (run_dir / "summary.md").read_text()
    page = (run_dir / "summary.html").read_text()
    assert str(run_dir / "summary.md") in first_run["stdout"]
    for text in (md, page):
        assert "per_split" in text and "ood_flipped" in text and "0.75" in text
        assert "OOD accuracy falls below ID" in text
        assert "00_good/figures/curve.png" in text and "ZeroDivisionError" in text
        assert "accuracy.ood" in text  # nested metrics flattened
    assert "<b>as expected</b>" not in page and "&lt;b&gt;as expected&lt;/b&gt;" in page
    assert (run_dir / "00_good" / "figures" / "curve.png").stat().st_size > 0
    rendered = run_dir / "00_good" / "00_good.html"  # nbconvert's page, linked instead of the raw JSON
    assert "A notebook that works" in rendered.read_text() and "static outputs: 1" in rendered.read_text()
    assert "href='00_good/00_good.html'" in page and "href='00_good/result.json'" in page
    assert "(00_good/00_good.html)" in md
    assert (run_dir / "01_broken" / "01_broken.html").exists()  # a failed notebook is rendered too


@pytest.mark.slow
def test_second_run_gets_a_new_folder_and_the_interpreter_running_it(first_run, nb_dir, tmp_path):
    """A clean env (no venv on PATH) and a decoy user kernelspec must not change which Python runs."""
    before = {p: p.read_bytes() for p in first_run["run_dir"].rglob("*") if p.is_file()}
    decoy = tmp_path / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "decoy", "language": "python"}))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_PATH": str(tmp_path / "jupyter"),
           "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "run", "02", "--runs-dir",
                           str(first_run["runs"]), "--notebooks-dir", str(nb_dir)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = sorted(p for p in first_run["runs"].iterdir() if p.is_dir())
    assert len(runs) == 2 and runs[0] == first_run["run_dir"]
    assert (runs[1] / "02_other" / "result.json").exists()
    after = {p: p.read_bytes() for p in first_run["run_dir"].rglob("*") if p.is_file()}
    assert after == before


def test_run_folders_are_unique_within_a_second(tmp_path):
    folders = [runner.new_run_dir(tmp_path) for _ in range(3)]
    assert len(set(folders)) == 3 and all(f.is_dir() and not any(f.iterdir()) for f in folders)


def test_unknown_notebook_lists_available_and_runs_nothing(nb_dir, tmp_path, capsys):
    code = main(["run", "00", "07_missing", "--notebooks-dir", str(nb_dir), "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "07_missing" in err and all(s in err for s in ("00_good", "01_broken", "02_other"))
    assert not (tmp_path / "r").exists()


def test_unknown_parameter_lists_accepted_names(nb_dir, tmp_path, capsys):
    code = main(["run", "00", "02", "-p", "sede", "1", "--notebooks-dir", str(nb_dir),
                 "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "'sede'" in err
    assert "00_good: seed, label;" in err and "02_other: (none)" in err  # output_dir/quick are the runner's
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match="seed"):  # fits 00 only: not selected here
        runner.run_notebooks(["02"], params={"seed": 1}, notebooks_dir=nb_dir, runs_dir=tmp_path / "r")
    with pytest.raises(ValueError, match="--quick"):
        runner.run_notebooks(["00"], params={"quick": True}, notebooks_dir=nb_dir, runs_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_notebook_names_resolve_by_stem_number_and_path(nb_dir, tmp_path):
    good = nb_dir / "00_good.ipynb"
    for name in ["00_good", "00", "0", "00_good.ipynb", str(good)]:
        assert runner.resolve_notebooks([name], nb_dir) == [good.resolve()]
    assert [p.stem for p in runner.resolve_notebooks(None, nb_dir)] == ["00_good", "01_broken", "02_other"]
    assert [p.stem for p in runner.resolve_notebooks(["02", "00", "02"], nb_dir)] == ["02_other", "00_good"]
    with pytest.raises(FileNotFoundError, match="no NN_"):
        runner.resolve_notebooks(None, tmp_path)
    write_notebooks(tmp_path, {"03_a": OTHER, "03_b": OTHER})
    with pytest.raises(ValueError, match="ambiguous"):
        runner.resolve_notebooks(["03"], tmp_path)


def test_stale_pair_is_detected(tmp_path):
    write_notebooks(tmp_path, {"00_a": OTHER})
    assert not runner.stale_pair(tmp_path / "00_a.ipynb")  # no .py: nothing to compare
    (tmp_path / "00_a.py").write_text(OTHER)
    assert not runner.stale_pair(tmp_path / "00_a.ipynb")
    (tmp_path / "00_a.py").write_text(OTHER.replace("02_other", "renamed"))
    assert runner.stale_pair(tmp_path / "00_a.ipynb")


@pytest.mark.parametrize("text, value", [("3", 3), ("0.5", 0.5), ("True", True), ("None", None),
                                         ("[1, 2]", [1, 2]), ("ViT-B-32", "ViT-B-32"), ("'3'", "3"),
                                         ("hello world", "hello world")])
def test_parse_value(text, value):
    assert runner.parse_value(text) == value and type(runner.parse_value(text)) is type(value)


def test_summary_renders_odd_tables(tmp_path):
    res = runner.NotebookResult("00_x", "ok", 1.0, tmp_path / "00_x", result={
        "metrics": {"a": {"b": 1.23456789}}, "findings": "x | y",
        "tables": {"rows": [{"k": "a|b", "v": 1}, {"k": "c", "extra": [1, 2]}],
                   "by_name": {"m1": {"acc": 0.5}, "m2": {"acc": 0.25}}, "flat": {"n": 3}}})
    summary = runner.RunSummary(tmp_path, [res], tmp_path / "summary.md", tmp_path / "summary.html")
    md, page = runner.render_markdown(summary), runner.render_html(summary)
    assert "| a\\|b | 1 | - |" in md and "1.235" in md and "| m2 | 0.25 |" in md
    assert page.count("<table") == 5  # overview, metrics, three tables
    assert summary.ok and "1/1 notebooks ok" in summary.verdict()


def _study_section(tmp_path: Path):
    """A study's folder as a notebook leaves it: executed notebook, result.json fields, captioned figures."""
    import nbformat

    from workbench.studies.kit import save_figure

    out = tmp_path / "01_study"
    (out / "figures").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · A study\n\n**Question.** Does masking keep OOD accuracy?\n\n"
                                              "**Setup.** Not part of the question.")]
    nbformat.write(nb, out / "01_study.ipynb")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, is_main, caption in (("zz_main", True, "The main picture: read it first."), ("aa_other", False, "")):
        fig, ax = plt.subplots(figsize=(1, 1))
        save_figure(fig, out, name, caption=caption, main=is_main)
        plt.close(fig)
    rows = [{"method": "ft", "setting": None, "seed": s, "id": 0.5 + s / 100, "history": list(range(30)),
             "id_items": [1, 0, 1]} for s in range(3)]
    result = {"study": "s", "headline": "Masking keeps 40% of what FT loses. Verdict: partly.",
              "findings": "A long paragraph. " * 40, "main_table": "results", "percent": ["id"], "rows": rows,
              "tables": {"comparisons": [{"a": "x", "diff": 0.01}],
                         "results": [{"method": "ft", "id": 0.51, "id_std": 0.01, "id_ci": [0.4852, 0.5348],
                                      "seconds_per_step": 0.25}]},
              "figure_captions": json.loads((out / "figures" / "captions.json").read_text())}
    res = runner.NotebookResult("01_study", "ok", 2.0, out, result=result,
                                figures=sorted((out / "figures").glob("*.png")))
    return runner.RunSummary(tmp_path, [res], tmp_path / "summary.md", tmp_path / "summary.html")


def test_report_opens_each_study_with_question_finding_main_table_and_figure(tmp_path):
    summary = _study_section(tmp_path)
    page = runner.render_html(summary)
    section = page[page.index("<section>"):]
    order = [section.index(x) for x in ("Does masking keep OOD accuracy?", "Masking keeps 40% of what FT loses",
                                        "<h3>results</h3>", "zz_main.png", "<details>")]
    assert order == sorted(order), order  # question, finding, main table, main figure, then the details
    assert "Not part of the question" not in page
    head = section[:section.index("<details>")]
    assert "51.0 ± 1.0<br><small>[48.5, 53.5]</small>" in head  # the interval on its own line, one cell
    assert "<th>id %</th>" in head and "95% interval" in head
    assert "0.25" in head and "25.0" not in head  # seconds are not a percentage
    assert "The main picture: read it first." in head and "aa_other.png" not in head
    assert "A long paragraph." not in head  # the whole findings are folded away
    details = section[section.index("<details>"):]
    assert "aa_other.png" in details and "per-seed rows (3)" in details and "(30 entries)" not in details
    assert "id_items" not in details  # per-item lists stay in result.json
    md = runner.render_markdown(summary)
    assert md.index("**Question.**") < md.index("**Finding.**") < md.index("### results") < md.index("### Details")
    assert "| ft | 51.0 ± 1.0 [48.5, 53.5] | 0.25 |" in md


def test_figures_keep_their_saving_order_and_captions(tmp_path):
    summary = _study_section(tmp_path)
    figs = runner.figures_of(summary.results[0])
    assert [f.path.stem for f in figs] == ["zz_main", "aa_other"]  # saved order, not alphabetical
    assert [f.main for f in figs] == [True, False] and figs[0].caption == "The main picture: read it first."
    assert figs[1].caption == "aa_other"  # no caption given: the file name


def test_wide_tables_fit_the_page(tmp_path):
    """A main table wider than MAX_COLUMNS: transposed when it has few rows, else blocks that repeat its names."""
    from workbench.runner.report.tables import MAX_COLUMNS

    def table(n_rows: int) -> list[dict]:
        return [{"label": f"k={k}", "method": "modular", "setting": k, "seeds": 2,
                 **{f"m{j}": 0.5 + j / 100 for j in range(30)}, **{f"m{j}_std": 0.01 for j in range(30)},
                 **{f"m{j}_ci": [0.4, 0.6] for j in range(30)}} for k in range(n_rows)]

    few = runner.NotebookResult("04_x", "ok", 1.0, tmp_path / "04_x",
                                result={"tables": {"k_sweep": table(3)}, "main_table": "k_sweep", "percent": ["m0"]})
    summary = runner.RunSummary(tmp_path, [few], tmp_path / "s.md", tmp_path / "s.html")
    main = runner.build_report(summary).sections[0].main
    [t] = main.parts
    assert t.columns == ["", "k=0\nsetting 0, seeds 2", "k=1\nsetting 1, seeds 2", "k=2\nsetting 2, seeds 2"]
    assert len(t.cells) == 30 and t.cells[0] == ["m0 %", *["50.0 ± 1.0\n[40.0, 60.0]"] * 3]
    assert main.legend.startswith("one column per row of the table; cells: mean ± std")
    many = runner.shown_table(table(12))
    blocks = runner.report.fit(many)
    assert all(len(b.columns) <= MAX_COLUMNS and b.columns[:3] == ["method", "setting", "seeds"] for b in blocks)
    assert sum(len(b.columns) - 3 for b in blocks) == 30 and all(len(b.cells) == 12 for b in blocks)
    page = runner.render_html(summary)
    assert "k=0<br>setting 0, seeds 2" in page and "50.0 ± 1.0<br><small>[40.0, 60.0]</small>" in page


def test_pretrain_refuses_to_overwrite_a_model(tmp_path, capsys, monkeypatch):
    (tmp_path / "open_clip_model.safetensors").write_bytes(b"weights")
    assert main(["pretrain", "--out", str(tmp_path), "--steps", "2"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "open_clip_model.safetensors").read_bytes() == b"weights"
    import workbench.pretrain

    calls = []
    monkeypatch.setattr(workbench.pretrain, "pretrain",
                        lambda cfg, out: calls.append((cfg, out)) or {"final_loss": 1.0, "history": [1]})
    assert main(["pretrain", "--out", str(tmp_path), "--steps", "2", "--seed", "5", "--force"]) == 0
    (cfg, out), = calls
    assert (cfg.steps, cfg.seed, out) == (2, 5, tmp_path)
    assert '"final_loss": 1.0' in capsys.readouterr().out


def test_models_lists_names(capsys):
    assert main(["models"]) == 0
    names = capsys.readouterr().out.split()
    assert "tiny-world-clip" in names and "ViT-B-32" in names
