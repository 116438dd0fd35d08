"""Jobs through submitit on a real SLURM cluster: the one-node cluster of .ci/slurm/start.sh.

    .ci/slurm/start.sh            # prints the partition ("debug"); .ci/slurm/stop.sh stops it
    WORKBENCH_SLURM=1 pytest tests/test_slurm_cluster.py

Skipped when `sinfo` is missing or the cluster is not up, except in CI with WORKBENCH_SLURM=1, where
that fails. WORKBENCH_SLURM_PARTITION picks the partition (default: the cluster's default one).
Every wait has a hard timeout, so a job that never reports back fails a test instead of hanging it.
"""

import functools
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.waiting import within

pytestmark = pytest.mark.slurm

REQUIRED = bool(os.environ.get("CI")) and os.environ.get("WORKBENCH_SLURM") == "1"
RESULT_TIMEOUT_S = 120  # submit -> result is ~1 s on an idle cluster; generous for a loaded 2-core machine
CANCEL_TIMEOUT_S = 60  # submitit itself waits 15 s for a result file before it reports a cancelled job
READY_STATES = {"idle", "mix", "alloc", "comp", "plnd"}  # sinfo %t, without a "*"/"~"/"#" suffix


# ---------------------------------------------------------------- the jobs' functions
# (pickled by value, see _executor: the job does not need to import this module)
def _square_where(x):
    return x * x, os.environ.get("SLURM_JOB_ID"), os.environ.get("SLURM_JOB_PARTITION")


def _fails_on_one(x):
    if x == 1:
        raise ValueError(f"boom from item {x}")
    return x + 100


def _sleep(seconds):
    time.sleep(seconds)
    return "woke up"


# ---------------------------------------------------------------- helpers
def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


@functools.cache
def _cluster():
    """(partition, None) when the cluster takes jobs, else (None, why not)."""
    if shutil.which("sinfo") is None:
        return None, "`sinfo` not found (start one with .ci/slurm/start.sh)"
    try:
        out = _run(["sinfo", "-h", "-o", "%P|%a|%t"])
        if out.returncode:
            return None, f"cluster not up: sinfo: {out.stderr.strip() or out.returncode} (.ci/slurm/start.sh)"
        partitions, default = {}, None
        for line in out.stdout.split():
            name, avail, state = line.split("|")
            if name.endswith("*"):
                name = default = name[:-1]
            partitions.setdefault(name, []).append((avail, state))
        wanted = os.environ.get("WORKBENCH_SLURM_PARTITION") or default or next(iter(partitions), None)
        if wanted not in partitions:
            return None, f"no partition {wanted!r} (sinfo: {out.stdout.strip()!r})"
        if not any(avail == "up" and state in READY_STATES for avail, state in partitions[wanted]):
            return None, f"partition {wanted!r} has no node taking jobs: {partitions[wanted]}"
        # submitit learns through sacct that a job ended without a result (cancelled, node failure)
        acct = _run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"])
        if acct.returncode:
            return None, f"`sacct` fails (no accounting?): {acct.stderr.strip()}"
    except (subprocess.TimeoutExpired, OSError) as e:
        return None, f"slurm commands do not answer: {e}"
    return wanted, None


def _require_cluster() -> str:
    partition, problem = _cluster()
    if problem:
        if REQUIRED:
            pytest.fail(f"SLURM cluster required (CI and WORKBENCH_SLURM=1): {problem}")
        pytest.skip(f"no SLURM cluster: {problem}")
    return partition


def _executor(folder, partition):
    import cloudpickle
    import submitit

    # pickle this module's functions by value: the job then needs neither this file nor its cwd
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(slurm_partition=partition, timeout_min=5, cpus_per_task=1, mem_gb=1,
                               name="workbench-slurm-test")
    assert executor.cluster == "slurm"
    return executor




def _cancel_leftovers(jobs):
    for job in jobs:
        if not job.done():
            job.cancel(check=False)


# ---------------------------------------------------------------- tests
def test_one_job_returns_its_result(tmp_path):
    partition = _require_cluster()
    executor = _executor(tmp_path, partition)
    start = time.monotonic()
    job = executor.submit(_square_where, 7)
    try:
        value, job_id, job_partition = within(RESULT_TIMEOUT_S, job.result)
    finally:
        _cancel_leftovers([job])
    print(f"submit -> result: {time.monotonic() - start:.1f} s")
    assert value == 49
    assert job_id == job.job_id  # it really ran as that SLURM job, not in this process
    assert job_partition == partition
    assert job.done()


def test_job_array_reports_the_failing_item_with_its_traceback(tmp_path):
    import submitit

    partition = _require_cluster()
    executor = _executor(tmp_path, partition)
    jobs = executor.map_array(_fails_on_one, [0, 1, 2])
    try:
        assert len(jobs) == 3
        array_id = jobs[0].job_id.split("_")[0]
        assert [job.job_id for job in jobs] == [f"{array_id}_{i}" for i in range(3)]  # one array, 3 tasks
        assert within(RESULT_TIMEOUT_S, jobs[0].result) == 100
        assert within(RESULT_TIMEOUT_S, jobs[2].result) == 102
        with pytest.raises(submitit.core.utils.FailedJobError) as failure:
            within(RESULT_TIMEOUT_S, jobs[1].result)
    finally:
        _cancel_leftovers(jobs)
    message = str(failure.value)
    assert "Traceback" in message
    assert "ValueError: boom from item 1" in message
    assert "_fails_on_one" in message  # the frame that raised


def test_cancelled_job_raises_instead_of_hanging(tmp_path):
    import submitit

    partition = _require_cluster()
    executor = _executor(tmp_path, partition)
    job = executor.submit(_sleep, 600)
    try:
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while job.watcher.get_state(job.job_id, mode="force") != "RUNNING":  # cancel a running job
            assert time.monotonic() < deadline, f"job {job.job_id} never started: {job.state}"
            time.sleep(0.5)
        job.cancel()
        cancelled_at = time.monotonic()
        # accounting (sacct) shows the cancellation within seconds ...
        while not job.done(force_check=True):
            assert time.monotonic() - cancelled_at < 30, f"sacct still says {job.state} 30 s after scancel"
            time.sleep(0.5)
        seen_after = time.monotonic() - cancelled_at
        # ... and result() raises (after submitit's own 15 s wait for a result file), never hangs
        with pytest.raises(submitit.core.utils.UncompletedJobError) as failure:
            within(CANCEL_TIMEOUT_S, job.result)
    finally:
        _cancel_leftovers([job])
    print(f"cancel seen by sacct after {seen_after:.1f} s, raised after {time.monotonic() - cancelled_at:.1f} s")
    assert job.state.startswith("CANCELLED")
    assert "CANCELLED" in str(failure.value)
