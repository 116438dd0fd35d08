import os
import subprocess
import sys

import pytest
import torch

from tests.ddp_train_script import Linear, batches
from workbench.engine import TrainConfig, train


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    """torchrun, 2 processes (gloo on CPU): each takes half of every batch, gradients are averaged,
    so the result equals one process on the whole batch."""
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "tests/ddp_train_script.py", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out)
    single = Linear()
    train(single, batches, TrainConfig(steps=5, lr=1e-2, seed=0), progress=False)
    for k, v in single.state_dict().items():
        assert torch.allclose(v, ddp[k], atol=1e-5), k
