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


class Normed(nn.Module):
    """A model with BatchNorm: its running statistics (buffers) must survive a resume."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x, y):
        return ((self.net(x).squeeze(-1) - y) ** 2).mean()


def _interrupt_at(step_to_stop):
    def feed(step):
        if step == step_to_stop:
            raise Interrupt
        return batches(step)
    return feed


def test_resume_restores_buffers(tmp_path):
    torch.manual_seed(5)
    ref = Normed()
    torch.manual_seed(5)
    model = Normed()
    train(ref, batches, CFG, progress=False)
    with pytest.raises(Interrupt):
        train(model, _interrupt_at(17), CFG, checkpoint=tmp_path / "c.pt", progress=False)
    torch.manual_seed(5)
    resumed = Normed()
    train(resumed, batches, CFG, checkpoint=tmp_path / "c.pt", progress=False)
    bn_ref, bn = ref.net[1], resumed.net[1]
    assert torch.equal(bn_ref.running_mean, bn.running_mean) and torch.equal(bn_ref.running_var, bn.running_var)
    assert int(bn.num_batches_tracked) == CFG.steps
    for p, q in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("change,field", [({"lr": 1e-2}, "lr"), ({"steps": 40}, "steps"), ({"seed": 4}, "seed"),
                                          ({"weight_decay": 0.0}, "weight_decay")])
def test_resuming_with_another_config_names_the_fields(tmp_path, change, field):
    import dataclasses

    with pytest.raises(Interrupt):
        train(_fresh(), _interrupt_at(17), CFG, checkpoint=tmp_path / "c.pt", progress=False)
    before = (tmp_path / "c.pt").read_bytes()
    with pytest.raises(ValueError, match=f"another training config.*{field}: checkpoint"):
        train(_fresh(), batches, dataclasses.replace(CFG, **change), checkpoint=tmp_path / "c.pt", progress=False)
    assert (tmp_path / "c.pt").read_bytes() == before  # nothing written over it


def test_resuming_another_objective_is_an_error(tmp_path):
    with pytest.raises(Interrupt):
        train(_fresh(), _interrupt_at(17), CFG, checkpoint=tmp_path / "c.pt", progress=False)
    with pytest.raises(ValueError, match="objective: checkpoint 'Regression', now 'Normed'"):
        train(Normed(), batches, CFG, checkpoint=tmp_path / "c.pt", progress=False)


class _Payload:
    """What a crafted checkpoint would smuggle in: unpickling it runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    witness = tmp_path / "pwned"
    torch.save({"params": {}, "result": _Payload(str(witness))}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="corrupt or not a workbench checkpoint"):
        train(_fresh(), batches, CFG, checkpoint=tmp_path / "c.pt", progress=False)
    assert not witness.exists()
