"""The claims ledger: the run report opens with it, `workbench claims` prints it, `workbench compare`
flags a claim whose verdict changed. Synthetic run folders (result.json written by hand); no kernel."""
from __future__ import annotations

import json
from pathlib import Path

from workbench import compare, runner
from workbench.cli import main

PAPER = "Xiao et al., CVPR 2023"


def claim(cid: str, verdict: str, **kw) -> dict:
    base = {"id": cid, "study": "cam_counterfactual", "paper": PAPER, "words": f"words of {cid}",
            "a": "mask_fd", "b": "full_ft", "metric": "ood_avg", "direction": ">", "margin": None,
            "paper_value": "masked FD 58.7 vs FT 54.9 OOD avg", "paper_table": "Table 1", "headline": False,
            "verdict": verdict, "diff": 0.031, "lo": 0.012, "hi": 0.05, "seeds": 8, "p": 0.004, "p_holm": 0.02,
            "detectable": 0.015, "seeds_needed": None, "scale": 100, "unit": "points", "reason": ""}
    return {**base, **kw}


CAM_CLAIMS = [
    claim("MCF-2", "supported", headline=True,
          words="distilling the CLIP teacher on masked images keeps the OOD robustness FT loses"),
    claim("MCF-3", "contradicted", diff=-0.02, lo=-0.035, hi=-0.005),
    claim("MCF-4", "unresolved", diff=0.004, lo=-0.01, hi=0.018, detectable=0.015, seeds_needed=24),
    claim("MCF-5", "equivalent", direction="=", margin=0.01, diff=0.001, lo=-0.004, hi=0.006),
    claim("MCF-6", "not run", diff=None, lo=None, hi=None, seeds=0, p=None, p_holm=None, detectable=None,
          reason="needs the ViT-B-32 cells"),
]
CODEBOOK_CLAIMS = [
    claim("UC-1", "out of scope", study="codebook", paper="Uni-Code, 2024", a="", b="", metric="",
          diff=None, lo=None, hi=None, seeds=0, reason="benchmark-scale retrieval"),
    claim("UC-2", "unresolved", study="codebook", paper="Uni-Code, 2024", a="unicode", b="vqvae", metric="r1",
          diff=0.01, lo=-0.02, hi=0.04, detectable=0.03, seeds_needed=40),
]
FAMILY = {"method": "holm", "alpha": 0.05, "size": 4}


def write_run(folder: Path, studies: dict[str, dict]) -> Path:
    """A run folder: <stem>/result.json per study."""
    for stem, result in studies.items():
        (folder / stem).mkdir(parents=True, exist_ok=True)
        (folder / stem / "result.json").write_text(json.dumps(result))
    return folder


def cam_result(claims=CAM_CLAIMS) -> dict:
    return {"study": "cam_counterfactual", "headline": "Masked FD keeps OOD accuracy.", "claims": claims,
            "claims_family": FAMILY, "tables": {"results": [{"method": "ft", "id": 0.5}]}, "main_table": "results"}


def codebook_result() -> dict:
    return {"study": "codebook", "claims": CODEBOOK_CLAIMS, "claims_family": {**FAMILY, "size": 1}}


def old_result() -> dict:
    return {"study": "old_study", "metrics": {"accuracy": 0.7},  # written before the ledger existed
            "rows": [{"method": "m", "setting": None, "seed": 0, "accuracy": 0.7}]}


def summary_of(run_dir: Path) -> runner.RunSummary:
    results = [runner.NotebookResult(p.parent.name, "ok", 1.0, p.parent, result=json.loads(p.read_text()))
               for p in sorted(run_dir.glob("*/result.json"))]
    return runner.RunSummary(run_dir, results, run_dir / "summary.md", run_dir / "summary.html")


def full_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", {"00_world_and_model": old_result(), "01_cam_counterfactual_masking":
                                        cam_result(), "03_codebook_visualization": codebook_result()})


def test_ledger_counts_and_rows(tmp_path):
    ledger = runner.build_ledger((r.name, r.result) for r in summary_of(full_run(tmp_path)).results)
    assert ledger.count_line == ("Of the 7 claims these papers make, 2 hold here (supported or equivalent), "
                                 "1 is contradicted, 2 are unresolved, 2 are out of scope / not run.")
    assert [r.id for r in ledger.rows] == ["MCF-2", "MCF-3", "MCF-4", "MCF-5", "MCF-6", "UC-1", "UC-2"]
    first = ledger.rows[0]
    assert first.notebook == "01_cam_counterfactual_masking" and first.study == "cam_counterfactual"
    assert first.comparison == "mask_fd vs full_ft on ood_avg (paper: >)"
    assert first.paper_value == "masked FD 58.7 vs FT 54.9 OOD avg (Table 1)"
    assert first.ours == "+3.1 [+1.2, +5.0] points" and first.seeds == "8" and first.headline
    rows = {r.id: r for r in ledger.rows}
    assert rows["MCF-4"].note == "could detect 1.5 points; ~24 seeds would resolve"
    assert rows["MCF-5"].comparison == "mask_fd vs full_ft on ood_avg (paper: = within ±1.0 points)"
    assert rows["MCF-6"].ours == "-" and rows["MCF-6"].seeds == "-" and rows["MCF-6"].note == "needs the ViT-B-32 cells"
    assert rows["UC-1"].comparison == "-" and rows["UC-1"].kind == "muted"
    assert ledger.footnote == ("Verdicts hold the family-wise error at 5% within each study (Holm); "
                               "the interval shown is unadjusted.")


def test_ledger_grammar_for_one_claim_of_one_paper():
    ledger = runner.build_ledger([("01_x", cam_result(CAM_CLAIMS[:1]))])
    assert ledger.count_line == ("Of the 1 claim this paper makes, 1 holds here (supported or equivalent), "
                                 "0 are contradicted, 0 are unresolved, 0 are out of scope / not run.")


def test_report_opens_with_the_ledger(tmp_path):
    summary = summary_of(full_run(tmp_path))
    md, page = runner.render_markdown(summary), runner.render_html(summary)
    for text in (md, page):
        assert "Of the 7 claims these papers make, 2 hold here" in text
        assert "Verdicts hold the family-wise error at 5% within each study (Holm); the interval shown is " \
               "unadjusted." in text
        ledger_at = text.index("MCF-2")
        assert ledger_at < text.index("00_world_and_model")  # before the overview and every study's section
        assert "+3.1 [+1.2, +5.0] points" in text and "masked FD 58.7 vs FT 54.9 OOD avg (Table 1)" in text
        assert "could detect 1.5 points; ~24 seeds would resolve" in text
        assert "distilling the CLIP teacher on masked images" in text and PAPER in text
    assert "[**MCF-2**](#01_cam_counterfactual_masking)" in md and '<a id="01_cam_counterfactual_masking"></a>' in md
    assert "href='#01_cam_counterfactual_masking'>MCF-2</a>" in page
    assert "<h2 id='01_cam_counterfactual_masking'>" in page  # where the link goes


def test_report_colours_verdicts_by_class(tmp_path):
    page = runner.render_html(summary_of(full_run(tmp_path)))
    expected = {"MCF-2": ("holds", "v-supported"), "MCF-3": ("contradicted", "v-contradicted"),
                "MCF-4": ("unresolved", "v-unresolved"), "MCF-5": ("holds", "v-equivalent"),
                "MCF-6": ("muted", "v-not-run"), "UC-1": ("muted", "v-out-of-scope")}
    for cid, (row_class, verdict_class) in expected.items():
        row = page[page.index(f"<tr id='claim-{cid}'"):]
        row = row[:row.index("</tr>")]
        assert f"class='{row_class}" in row and f"class='verdict {verdict_class}'" in row, row
    css = page[page.index("<style>"):page.index("</style>")]
    for rule in (".holds .verdict{background:#d8f0d8", ".contradicted .verdict{background:#fbd5d5",
                 ".unresolved .verdict{background:#fdebc8", ".muted .verdict{background:#eee"):
        assert rule in css


def test_report_without_claims_has_no_ledger(tmp_path):
    run = write_run(tmp_path / "run", {"00_world_and_model": old_result(), "01_x": {"study": "x", "claims": None}})
    summary = summary_of(run)
    md, page = runner.render_markdown(summary), runner.render_html(summary)
    assert "Claims" not in md and "id='claims'" not in page and "00_world_and_model" in page
    runner.write_summary(summary)
    assert (run / "summary.html").exists() and (run / "summary.md").exists()


def test_claims_command_prints_the_ledger(tmp_path, capsys):
    run = full_run(tmp_path)
    assert main(["claims", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Of the 7 claims these papers make, 2 hold here")
    assert out.splitlines()[2].startswith("claim ") and "verdict" in out.splitlines()[2]  # header under the count
    line = next(ln for ln in out.splitlines() if ln.startswith("MCF-2"))
    assert "cam_counterfactual" in line and "supported" in line and "+3.1 [+1.2, +5.0] points" in line
    assert "mask_fd vs full_ft on ood_avg" in line and "Table 1" in line
    assert "-> could detect 1.5 points; ~24 seeds would resolve" in out
    assert "(Holm); the interval shown is unadjusted." in out

    assert main(["claims", str(run), "--study", "codebook"]) == 0
    out = capsys.readouterr().out
    assert "Of the 2 claims this paper makes" in out and "MCF-2" not in out and "UC-2" in out
    assert main(["claims", str(run), "--study", "01"]) == 0  # a notebook number picks its study
    assert "MCF-2" in capsys.readouterr().out

    assert main(["claims", str(run), "--json", "--study", "cam_counterfactual"]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert dumped == CAM_CLAIMS


def test_claims_command_exit_codes(tmp_path, capsys):
    cases = {tmp_path / "missing": "is not a folder",
             tmp_path: "is not a run folder",  # no <notebook>/result.json
             write_run(tmp_path / "old", {"00_w": old_result()}): "states no claims"}
    for folder, words in cases.items():
        assert main(["claims", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1 and err.startswith("workbench claims: error:"), err
    assert main(["claims", str(full_run(tmp_path)), "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "cam_counterfactual, codebook" in err


def test_compare_flags_a_changed_verdict_and_fails(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"01_cam": cam_result()})
    changed = [claim("MCF-2", "unresolved", headline=True), *CAM_CLAIMS[1:]]
    b = write_run(tmp_path / "b", {"01_cam": cam_result(changed)})
    assert main(["compare", str(a), str(a)]) == 0
    assert "5 claims, 0 with a changed verdict" in capsys.readouterr().out
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "CLAIM MCF-2: supported -> unresolved" in out.splitlines()
    assert "MCF-3" not in out and "1 claim changed verdict" in out and out.splitlines()[-1].startswith("DIFFERENT")
    dropped = write_run(tmp_path / "c", {"01_cam": cam_result(CAM_CLAIMS[:-1])})
    [cmp] = compare.compare(a, dropped)
    assert [str(c) for c in cmp.claims] == ["CLAIM MCF-6: not run -> absent"] and not cmp.ok


def test_compare_without_claims_on_one_side_compares_numbers_only(tmp_path, capsys):
    a = write_run(tmp_path / "a", {"01_cam": old_result()})
    b = write_run(tmp_path / "b", {"01_cam": {**old_result(), "claims": CAM_CLAIMS, "claims_family": FAMILY}})
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "claims not compared (only B states claims)" in out and "CLAIM" not in out
