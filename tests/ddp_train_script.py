"""Run by test_engine_distributed under torchrun: the engine, unchanged, on 2 CPU processes."""
import sys

import torch
import torch.nn as nn

from workbench.engine import TrainConfig, train


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x, y):
        return ((self.net(x).squeeze(-1) - y) ** 2).mean()


def batches(step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(32, 8, generator=g)
    return {"x": x, "y": x.sum(1)}


if __name__ == "__main__":
    model = Linear()
    train(model, batches, TrainConfig(steps=5, lr=1e-2, seed=0), progress=False)
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        sys.exit(0)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, sys.argv[1])
