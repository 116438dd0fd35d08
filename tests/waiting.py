"""Waiting in tests that must never hang (SLURM jobs, sweeps): a call in a daemon thread with a hard limit."""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest


def within(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a daemon thread: its value or its exception, or a test failure after `seconds`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # re-raised in the test's thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__qualname__', fn)} did not return within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box["value"]
