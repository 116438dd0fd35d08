"""What a run produced: one `NotebookResult` per notebook, gathered in a `RunSummary`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class NotebookResult:
    """How one notebook went. `failed_cell` counts the notebook's own cells (markdown too) from 1."""

    name: str
    status: str  # "ok" | "failed"
    seconds: float
    output_dir: Path
    result: dict | None = None  # the study's result.json, if it wrote one
    error: str | None = None  # "cell 3 (`x = 1 / 0`): ZeroDivisionError: division by zero"
    failed_cell: int | None = None
    traceback: str | None = None
    figures: list[Path] = field(default_factory=list)  # png files under output_dir/figures
    parameters: dict = field(default_factory=dict)

    @property
    def executed(self) -> Path:
        """The executed copy of the notebook (with outputs)."""
        return self.output_dir / f"{self.name}.ipynb"


@dataclass
class RunSummary:
    run_dir: Path
    results: list[NotebookResult]
    summary_md: Path
    summary_html: Path
    quick: bool = False
    params: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.status == "ok" for r in self.results)

    @property
    def failures(self) -> list[NotebookResult]:
        return [r for r in self.results if r.status != "ok"]

    def verdict(self) -> str:
        """One line: how many notebooks passed, which failed, where the report is."""
        n_ok = len(self.results) - len(self.failures)
        head = f"{'OK' if self.ok else 'FAILED'}: {n_ok}/{len(self.results)} notebooks ok in {self.seconds:.1f} s"
        failed = ", ".join(r.name for r in self.failures)
        return head + (f" (failed: {failed})" if failed else "") + f" -> {self.summary_md}"
