import pytest
import torch
import torch.nn as nn

from workbench.engine import Loss, TrainConfig, save_atomic, train


class Regression(nn.Module):
    """A small model with dropout, so RNG state matters for resumption."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x, y):
        loss = ((self.net(x).squeeze(-1) - y) ** 2).mean()
        return Loss(loss, {"mae": (self.net(x).squeeze(-1) - y).abs().mean()})


def batches(step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(32, 8, generator=g)
    return {"x": x, "y": x.sum(1)}


def _fresh():
    torch.manual_seed(123)
    return Regression()


CFG = TrainConfig(steps=30, lr=3e-2, log_every=5, seed=3, checkpoint_every=10)


def test_training_reduces_loss_and_logs():
    res = train(_fresh(), batches, CFG, progress=False)
    assert len(res.history) == 6 and res.history[-1]["step"] == 30
    assert res.history[-1]["loss"] < res.history[0]["loss"] * 0.5
    assert "mae" in res.history[0] and res.history[0]["lr"] > 0


def test_same_seed_same_numbers():
    a = train(_fresh(), batches, CFG, progress=False)
    b = train(_fresh(), batches, CFG, progress=False)
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    c = train(_fresh(), batches, TrainConfig(**{**CFG.__dict__, "seed": 4}), progress=False)
    assert [r["loss"] for r in a.history] != [r["loss"] for r in c.history]


class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    ref_model = _fresh()
    ref = train(ref_model, batches, CFG, progress=False)

    def interrupted(step):
        if step == 17:
            raise Interrupt
        return batches(step)

    model = _fresh()
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Interrupt):
        train(model, interrupted, CFG, checkpoint=ckpt, progress=False)
    assert ckpt.is_file() and not list(tmp_path.glob(".*tmp*"))
    resumed_model = _fresh()
    res = train(resumed_model, batches, CFG, checkpoint=ckpt, progress=False)
    assert res.resumed_from == 10
    assert [r["loss"] for r in res.history] == [r["loss"] for r in ref.history]
    for p, q in zip(ref_model.parameters(), resumed_model.parameters()):
        assert torch.equal(p, q)
    # a finished checkpoint returns at once with the same history
    again = train(_fresh(), batches, CFG, checkpoint=ckpt, progress=False)
    assert again.history == res.history


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        train(_fresh(), batches, CFG, checkpoint=ckpt, progress=False)
    assert ckpt.read_bytes() == b"garbage"


def test_only_listed_params_train():
    model = _fresh()
    first = model.net[0].weight.detach().clone()
    train(model, batches, TrainConfig(steps=3, lr=1e-2), params=list(model.net[3].named_parameters()),
          progress=False)
    assert torch.equal(first, model.net[0].weight)


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="warmup=1.5"):
        TrainConfig(warmup=1.5)
    with pytest.raises(ValueError, match="mixed_precision='fp8'"):
        TrainConfig(mixed_precision="fp8")


def test_save_atomic_replaces_in_one_step(tmp_path):
    path = tmp_path / "x.pt"
    save_atomic({"a": 1}, path)
    save_atomic({"a": 2}, path)
    assert torch.load(path)["a"] == 2 and len(list(tmp_path.iterdir())) == 1
