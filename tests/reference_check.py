"""The notebook tests' check against the committed quick-mode references (notebooks/reference/).

Exact where the run's environment is the one the reference records (`workbench.compare.ENVIRONMENT_KEYS`).
Elsewhere the last digits of float sums move with the CPU's kernels: seen, losses 3e-5 apart (relative)
between two AVX512 machines with one torch build, every accuracy equal. So across environments a
relative 1e-3 on every number, with an absolute floor below one item of any accuracy: a changed
method, a changed seed or a changed data stream moves numbers by far more than that.
"""
from __future__ import annotations

from workbench import compare
from workbench.runner import NOTEBOOKS_DIR

ACROSS_MACHINES = (1e-3, 1e-6)  # rtol, atol
# Study 03 has a discrete path (the nearest code, resets): its nearest-code search runs in float64 with ties to
# the lowest index, so a last-digit difference in the features rarely changes a code; where one does, a
# held-out accuracy moves by whole test sequences. Across machines its numbers may differ by up to two of the
# quick preset's 60 test sequences (an absolute 2/60 on accuracies and fractions; relative 1e-3 elsewhere).
ACROSS = {"03_codebook_visualization": (1e-3, 2 / 60)}


def assert_matches_reference(summary, res) -> compare.NotebookComparison:
    """Compare a run's notebook with its committed reference; fail with the side-by-side report."""
    [same] = compare.compare(NOTEBOOKS_DIR / "reference", summary.run_dir, notebooks=[res.name],
                             across=ACROSS.get(res.name, ACROSS_MACHINES))
    assert same.ok, compare.report([same], show="failures")
    return same
