"""A disk that runs out of room, in tests: writes past a file-size limit fail with EFBIG, without filling a disk."""
from __future__ import annotations

import contextlib
import resource
import signal
from typing import Iterator


@contextlib.contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """Inside the block a write past `nbytes` fails with EFBIG (RLIMIT_FSIZE, SIGXFSZ ignored); the limit and the
    signal's handler are restored after it. Main thread only (signal.signal)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
