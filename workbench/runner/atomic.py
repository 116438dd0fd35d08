"""One atomic text writer for the run folder (the study kit's `write_json_atomic` writes JSON only); both go
through `workbench.checks.atomic_path`."""
from __future__ import annotations

from pathlib import Path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to a unique temporary file beside `path`, then rename it over `path` (never half-written;
    a full disk or a file-size limit raises WriteError naming `path` and leaves no partial file)."""
    from workbench.checks import atomic_path  # here, not above: `workbench claims` and `compare` need no torch

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
