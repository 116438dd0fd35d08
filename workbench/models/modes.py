"""Training-flag hygiene for any nn.Module: evaluate in eval mode, give every flag back after."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch.nn as nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode for the block, then restore each one's own flag, also on error.

    Restoring per submodule (not `module.train(was)`) keeps a frozen teacher inside a
    training student exactly as the caller left it. Eval mode matters for CAMs and evaluation
    because open_clip's patch dropout and any dropout would otherwise be active.
    """
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, flag in flags:
            m.training = flag
