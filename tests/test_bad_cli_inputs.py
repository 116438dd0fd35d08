"""`workbench run` refuses a bad -p value or option with exit 2, naming it, before any notebook starts:
no code runs from a value, and the study's Config checks every value (type, range, duplicates) first."""
from __future__ import annotations

import pytest

from workbench import cli
from workbench.runner import parse_value

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
