"""benchmarks/bench_efficiency.py --quick in-process on a tiny setting: the JSON has a positive sgemm peak,
every step's fraction of it in (0, 1.5], the speedup variants timed and checked for determinism."""
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_efficiency

        yield bench_efficiency
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def result(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("eff") / "bench_efficiency.json"
    assert bench.main(["--quick", "--batch", "4", "--sweep-batches", "8", "--repeats", "1", "--peak-sizes", "256",
                       "512", "--peak-repeats", "2", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def _fraction_ok(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and 0 < x <= 1.5


def test_peak_and_fractions(result):
    peak = result["peak"]
    assert peak["peak_gflops"] > 0 and peak["threads"] >= 1 and [r["n"] for r in peak["sizes"]] == [256, 512]
    assert {r["study"] for r in result["steps"]} == {"01", "02", "03", "04"}
    assert [r["batch"] for r in result["sweep"]] == [8]
    for row in result["steps"] + result["sweep"]:
        assert row["flops_per_step"] > 0 and row["seconds_per_step"] > 0, row
        assert _fraction_ok(row["fraction_of_peak"]), row
    assert result["environment"]["threads"] == peak["threads"] and result["environment"]["torch"]


def test_speedups_and_determinism(result):
    for row in result["steps"]:
        var = row["variants"]
        assert set(var) == {"plain", "foreach", "fused", "compiled"}
        assert var["compiled"]["ratio_over_plain"] is None and "not tried" in var["compiled"]["note"]  # quick
        for v in ("plain", "foreach", "fused"):
            assert var[v]["ratio_over_plain"] > 0 and _fraction_ok(var[v]["fraction_of_peak"]), (row["step"], v)
            assert var[v]["deterministic"] is True, (row["step"], v, var[v]["losses"], var[v]["losses_again"])
        assert var["plain"]["ratio_over_plain"] == 1.0 and var["plain"]["loss3_minus_plain"] == 0.0


def test_bad_part_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.main(["--only", "05"])
