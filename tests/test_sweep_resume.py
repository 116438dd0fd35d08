"""A cell interrupted after its training checkpoint resumes from it: in-process, as a requeued submitit job, and
as a SLURM job requeued by `scontrol requeue` -- with the numbers of an uninterrupted run, bit for bit (CPU).

The cells are tiny study-02 (engine-trained, with a validation curve) and study-01 ones. A job is stopped by
`GatedCellJob` (below; importable by the jobs, which run in this repository): its first run waits, right after
its cell's first checkpoint, to be signalled; its second run trains on. The test marked `slurm` needs the
one-node cluster of .ci/slurm/start.sh and is skipped without it (CI with WORKBENCH_SLURM=1: fails).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.test_slurm_cluster import _require_cluster
from tests.waiting import within
from workbench import sweep as sw
from workbench.studies import cam_counterfactual as study01
from workbench.studies import cp_rank_ablation as study02
from workbench.studies import kit
from workbench.studies.cp_rank_ablation import cells as cells02

REPO = Path(__file__).resolve().parents[1]
GATE_ENV = "WORKBENCH_TEST_GATE"  # the folder through which a GatedCellJob and its test talk
TIMING = ("train_seconds", "eval_seconds", "seconds_per_step", "teacher_cam_seconds")  # wall times, not numbers
# study 02, one engine-trained cell: 6 steps, a validation look every step (the curve), the adapter kept
CFG02 = dict(methods=("mode_approx",), ranks=(2,), ablation_ranks=(), keep_rank=2, seeds=(0,), claim_seeds=(),
             steps=6, eval_every=1, batch_size=8, n_eval=16, n_heldout=10, n_val=8, real_scale="off", device="cpu")
CELL02 = kit.Cell("mode_approx", 2, 0)


class Stop(Exception):
    """The injected interruption (what a preemption is to the cell: it stops between two steps)."""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(kit.CHECKPOINT_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def one_thread_jobs(monkeypatch):
    """One torch thread here and in every job: float sums follow the thread count, and the machine is small."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMING}


def _fresh(study, cfg, cell, monkeypatch, tmp_path) -> dict:
    """The cell computed in one piece, without checkpoints, in a cache of its own."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "fresh"))
    try:
        return study.run_one(cfg, cell, checkpoint_every=0)
    finally:
        monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------ the kit
def test_a_cell_gets_its_own_checkpoint_only_while_it_is_computed_with_checkpoints_on(cache, monkeypatch):
    c = kit.CellCache("toy", _Toy(), weights="w")
    a, b = kit.Cell("m", 1, 0), kit.Cell("m", 1, 1)
    assert kit.checkpoint() is None  # outside a cell
    with c.computing(a, 0):
        assert kit.checkpoint() is None  # checkpoints off: the notebook's default
    with c.computing(a, 3):
        ck = kit.checkpoint()
        assert ck == kit.Checkpoint(c.folder / "m-r1-s0.ckpt" / "train.pt", 3) and ck.path.parent.is_dir()
        assert kit.checkpoint("linear_probe").path.name == "linear_probe.pt"
        with c.computing(b, 3):
            assert kit.checkpoint().path.parent.name == "m-r1-s1.ckpt"  # unique per cell (and per cache key)
        assert kit.checkpoint().path == ck.path
        with pytest.raises(ValueError, match="checkpoint name '../x'"):
            kit.checkpoint("../x")
        ck.path.write_bytes(b"left by an interrupted run")
    assert kit.checkpoint() is None
    assert kit.CellCache("toy", _Toy(value=2), weights="w").folder != c.folder
    c.save(a, {"x": 1})
    assert not ck.path.parent.exists() and c.load(a) == {"x": 1}  # removed once the entry is written

    assert kit.checkpoint_every() == 0
    monkeypatch.setenv(kit.CHECKPOINT_ENV, "25")
    assert kit.checkpoint_every() == 25 and kit.checkpoint_every(0) == 0
    for bad in ("-1", "ten", "2.5"):
        monkeypatch.setenv(kit.CHECKPOINT_ENV, bad)
        with pytest.raises(ValueError, match=f"WORKBENCH_CHECKPOINT_EVERY='{bad}': give a whole number"):
            kit.checkpoint_every()
    with pytest.raises(ValueError, match="checkpoint_every=True"):
        kit.checkpoint_every(True)
    with pytest.raises(ValueError, match="checkpoint_every=-2"):
        c.computing(a, -2).__enter__()


@dataclasses.dataclass(frozen=True)
class _Toy:
    value: int = 1


# ------------------------------------------------------------------------------------------------ in-process
def test_a_study_02_cell_interrupted_after_its_checkpoint_resumes_with_the_same_numbers(
        cache, monkeypatch, tmp_path, capfd, one_thread_jobs):
    cfg = study02.Config(**CFG02)
    seen, stop = [], {"at": 5}
    real = cells02.Batches.__call__

    def batches(self, step):
        seen.append(step)
        if step == stop["at"]:
            raise Stop(f"stopped before step {step}")
        return real(self, step)

    monkeypatch.setattr(cells02.Batches, "__call__", batches)
    with pytest.raises(Stop):  # steps 0-4 trained, a checkpoint after step 3 (every 3 steps), none after 4
        study02.STUDY.run_one(cfg, CELL02, checkpoint_every=3)
    folder = study02.STUDY.cache(cfg, study02.build_context(cfg)).folder
    kept = folder / f"{CELL02.id}.ckpt"
    assert sorted(p.name for p in kept.iterdir()) == ["train.curve.json", "train.pt"]
    # the looks before steps 0-5 (look 5 came before the stop)
    assert [p["step"] for p in json.loads((kept / "train.curve.json").read_text())] == [0, 1, 2, 3, 4, 5]
    assert not (folder / f"{CELL02.id}.json").exists()

    seen.clear()
    stop["at"] = None
    resumed = study02.STUDY.run_one(cfg, CELL02, checkpoint_every=3)
    assert seen == [3, 4, 5]  # only the steps after the checkpoint were trained again
    assert f"resuming from its checkpoint(s) train.pt in {kept}" in capfd.readouterr().err
    assert not kept.exists() and (folder / f"{CELL02.id}.json").is_file()
    assert [p["step"] for p in resumed["curve"]] == list(range(7))  # steps 1, 2 came from the kept curve

    seen.clear()
    fresh = _fresh(study02.STUDY, cfg, CELL02, monkeypatch, tmp_path)
    assert seen == list(range(6))
    assert _numbers(resumed) == _numbers(fresh)  # every metric, the loss and the whole curve, bit for bit
    assert json.loads((folder / f"{CELL02.id}.json").read_text())["curve"] == fresh["curve"]


def test_an_unreadable_kept_curve_trains_the_cell_again_from_the_start(cache, monkeypatch, tmp_path, capfd,
                                                                       one_thread_jobs):
    cfg = study02.Config(**{**CFG02, "steps": 4})
    seen, stop, real = [], {"at": 3}, cells02.Batches.__call__

    def batches(self, step):
        seen.append(step)
        if step == stop["at"]:
            raise Stop
        return real(self, step)

    monkeypatch.setattr(cells02.Batches, "__call__", batches)
    with pytest.raises(Stop):
        study02.STUDY.run_one(cfg, CELL02, checkpoint_every=2)
    kept = study02.STUDY.cache(cfg, study02.build_context(cfg)).folder / f"{CELL02.id}.ckpt"
    (kept / "train.curve.json").write_text('[{"step": 0, "ac')  # torn by hand: the engine writes atomically
    seen.clear()
    stop["at"] = None
    again = study02.STUDY.run_one(cfg, CELL02, checkpoint_every=2)
    assert seen == [0, 1, 2, 3] and "validation curve kept beside it (train.curve.json) is unreadable" in \
        capfd.readouterr().err
    assert _numbers(again) == _numbers(_fresh(study02.STUDY, cfg, CELL02, monkeypatch, tmp_path))


def test_a_study_01_cell_interrupted_after_its_checkpoint_resumes_with_the_same_numbers(
        cache, monkeypatch, tmp_path, one_thread_jobs):
    from workbench.data import ClassificationData

    cfg = study01.Config.preset(True, methods=("mask_fd",), steps=5, save_models=(), device="cpu",
                                cam_method="gradcam")
    cell = kit.Cell("mask_fd", None, 0)
    seen, stop = [], {"at": 4}
    real = ClassificationData.batches

    def batches(self, step):
        seen.append(step)
        if step == stop["at"]:
            raise Stop
        return real(self, step)

    monkeypatch.setattr(ClassificationData, "batches", batches)
    with pytest.raises(Stop):
        study01.STUDY.run_one(cfg, cell, checkpoint_every=2)
    seen.clear()
    stop["at"] = None
    resumed = study01.STUDY.run_one(cfg, cell, checkpoint_every=2)
    assert seen == [4]  # resumed after step 4's checkpoint: one step left
    seen.clear()
    fresh = _fresh(study01.STUDY, cfg, cell, monkeypatch, tmp_path)
    assert seen == list(range(5))
    assert _numbers(resumed) == _numbers(fresh)  # the accuracies, the loss history, bit for bit


# ------------------------------------------------------------------------------------------------ submitit
class GatedCellJob(sw.CellJob):
    """A CellJob whose first run (the file `interrupt-me` in the gate folder) waits, right after its cell's
    first checkpoint, to be interrupted; every run notes the steps it trains (`steps`: "<pid> <step>")."""

    def __call__(self) -> dict:
        gate = Path(os.environ[GATE_ENV])
        marker = gate / "interrupt-me"
        first = marker.exists()
        if first:
            marker.rename(gate / "waiting")
        real = cells02.Batches.__call__

        def batches(b, step):
            with (gate / "steps").open("a") as f:
                f.write(f"{os.getpid()} {step}\n")
            if first and step == self.checkpoint_every:  # the checkpoint after `step` steps is written
                job = os.environ.get("SLURM_JOB_ID")
                (gate / "ready").write_text(json.dumps({"pid": os.getpid(), "slurm_job_id": job}))
                time.sleep(300)  # until signalled (local) or killed (SLURM requeue)
            return real(b, step)

        cells02.Batches.__call__ = batches
        try:
            return super().__call__()
        finally:
            cells02.Batches.__call__ = real


def _steps(gate: Path) -> dict[str, list[int]]:
    """pid -> the steps it trained, in order."""
    out: dict[str, list[int]] = {}
    for line in (gate / "steps").read_text().split("\n"):
        if line:
            pid, step = line.split()
            out.setdefault(pid, []).append(int(step))
    return out


def _gated_sweep(tmp_path, monkeypatch, executor, interrupt, partition=None, limit_s=300):
    """Sweep CFG02's one cell through submitit with GatedCellJob; `interrupt(ready)` once its first run waits.
    Returns (report, the lines it said, the gate folder)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "interrupt-me").write_text("")
    monkeypatch.setenv(GATE_ENV, str(gate))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setattr(sw, "CellJob", GatedCellJob)  # the sweep builds its jobs from this name
    box, lines = {}, []

    def run():
        try:
            box["report"] = sw.sweep_study("workbench.studies.cp_rank_ablation", study02.Config(**CFG02),
                                           executor=executor, slurm_partition=partition, timeout_min=8,
                                           checkpoint_every=2, folder=tmp_path / "jobs", say=lines.append)
        except BaseException as e:  # re-raised below
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + limit_s
    while not (gate / "ready").exists():
        assert thread.is_alive() and time.monotonic() < deadline, f"{box.get('error')}\n" + "\n".join(lines)
        time.sleep(0.2)
    ready = json.loads((gate / "ready").read_text())
    kept = list((tmp_path / "cache").rglob(f"{CELL02.id}.ckpt/train.pt"))
    assert len(kept) == 1, "the first run waits after its first checkpoint"
    interrupt(ready)
    thread.join(limit_s)
    assert not thread.is_alive(), "the sweep did not finish:\n" + "\n".join(lines)
    if "error" in box:
        raise box["error"]
    return box["report"], lines, gate


def _check_resumed(report, lines, gate, monkeypatch, tmp_path):
    text = "\n".join(lines)
    assert report.ok and report.done == [CELL02.id], text
    runs = list(_steps(gate).values())
    assert len(runs) == 2, runs  # the first run, then the requeued one
    assert runs[0] == [0, 1, 2] and runs[1] == [2, 3, 4, 5], runs  # it trained 4 of 6 steps: resumed at 2
    log = Path(next(r.log for r in report.runs if r.cell == CELL02)).read_text()
    assert "resuming from its checkpoint(s) train.pt" in log
    entry = report.cache_folder / f"{CELL02.id}.json"
    assert not (report.cache_folder / f"{CELL02.id}.ckpt").exists()
    swept = json.loads(entry.read_text())
    fresh = _fresh(study02.STUDY, study02.Config(**CFG02), CELL02, monkeypatch, tmp_path)
    assert _numbers(swept) == _numbers(fresh)  # the requeued, resumed cell: the uninterrupted numbers
    return text


def test_a_preempted_local_job_is_requeued_and_resumes_its_cell_from_the_checkpoint(
        cache, monkeypatch, tmp_path, one_thread_jobs):
    # what SLURM sends before a timeout or a preemption; submitit checkpoints the CellJob and requeues it
    report, lines, gate = _gated_sweep(tmp_path, monkeypatch, "local",
                                       lambda ready: os.kill(ready["pid"], signal.SIGUSR2))
    text = _check_resumed(report, lines, gate, monkeypatch, tmp_path)
    assert "training checkpointed every 2 steps" in text


@pytest.mark.slurm
def test_a_slurm_job_requeued_by_scontrol_resumes_its_cell_from_the_checkpoint(
        cache, monkeypatch, tmp_path, one_thread_jobs):
    partition = _require_cluster()

    def requeue(ready):
        job = ready["slurm_job_id"]
        assert job, "the job does not run under SLURM"
        out = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        # SLURM holds a requeued job back (its begin time ~2 min ahead, measured on this one-node cluster):
        # once it is pending again, let it start now instead -- what is tested is what it does when it runs
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # (if it never shows as pending, it starts by itself: slower)
            if _squeue_state(job) == "PENDING":
                subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True,
                               timeout=30)
                break
            time.sleep(0.5)

    start = time.monotonic()
    report, lines, gate = within(540, _gated_sweep, tmp_path, monkeypatch, "slurm", requeue, partition, 480)
    print(f"SLURM requeue and resume: {time.monotonic() - start:.1f} s\n" + "\n".join(lines))
    _check_resumed(report, lines, gate, monkeypatch, tmp_path)
    where = json.loads((report.cache_folder / f"{CELL02.id}.where.json").read_text())
    assert where["executor"] == "slurm" and where["slurm_job_id"]


def _squeue_state(job: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()
