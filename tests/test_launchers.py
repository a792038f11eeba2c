"""`-m` sweeps through Hydra's joblib and submitit launchers (the optional extras), and what a killed job costs.

Measured here and said in the README: with joblib one killed job stops the whole
sweep; with submitit the other jobs finish, and running the same command again
in the same sweep dir runs only what is missing.
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import TINY, cli_command, cli_env, error_lines, run_cli, wait_for

TWO_JOBS = ("optimizer.lr=1e-3,1e-2", *TINY, "trainer.epochs=1")


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local"]], ids=["joblib", "submitit_local"])
def test_sweep_through_a_launcher_completes(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    result = run_cli("-m", *launcher, *TWO_JOBS, f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(job_dirs(sweep)) == 2 and all((d / "model.keras").is_file() for d in job_dirs(sweep))
    assert "2 jobs in" in result.stdout


def descendants(pid: int) -> list[int]:
    """Pids of every process below `pid` (Linux /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def job_processes(root: int, marker: str) -> list[int]:
    """Pids of the processes under `root` whose command line contains `marker`: this test's own jobs only."""
    pids = []
    for pid in descendants(root):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                pids.append(pid)
        except OSError:
            continue
    return pids


def start_and_kill_one_job(tmp_path: Path, sweep: Path, launcher: list[str], marker: str):
    """Start a two-job sweep, SIGKILL one job process once both are training; wait for the sweep to end."""
    args = ["-m", *launcher, "optimizer.lr=1e-3,1e-2", *TINY, "trainer.epochs=6", "trainer.early_stopping_patience=0",
            f"hydra.sweep.dir={sweep}"]
    sweep_process = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
    try:
        def two_jobs_past_an_epoch() -> bool:
            histories = list(sweep.glob("*/history.csv"))
            return len(histories) == 2 and all(len(h.read_text().splitlines()) >= 2 for h in histories)

        wait_for(two_jobs_past_an_epoch, 240, every=0.2, process=sweep_process)
        victims = job_processes(sweep_process.pid, marker)
        assert victims, "no job process found"
        os.kill(victims[0], signal.SIGKILL)
        out, err = sweep_process.communicate(timeout=300)
    finally:
        if sweep_process.poll() is None:
            sweep_process.kill()
    return args, sweep_process.returncode, err


@pytest.mark.slow
def test_submitit_keeps_the_other_jobs_and_the_same_command_finishes_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    args, code, err = start_and_kill_one_job(tmp_path, sweep, ["hydra/launcher=submitit_local"],
                                             f"submitit.core._submit {sweep}")
    assert code == 2 and "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == 1 and "a submitit job ended without finishing" in errors[0] and "hydra.sweep.dir" in errors[0]
    finished = {d.name: (d / "model.keras").stat().st_mtime_ns for d in job_dirs(sweep) if (d / "model.keras").exists()}
    assert len(finished) == 1, "the job that was not killed finished"

    again = run_cli(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all((d / "model.keras").is_file() for d in job_dirs(sweep)) and len(job_dirs(sweep)) == 2
    assert all((sweep / name / "model.keras").stat().st_mtime_ns == mtime for name, mtime in finished.items())
    assert all("finished before; kept as it is" in (sweep / name / "app.log").read_text() for name in finished)


@pytest.mark.slow
def test_joblib_loses_the_sweep_when_one_job_is_killed(tmp_path):
    sweep = tmp_path / "sweep"
    _, code, err = start_and_kill_one_job(tmp_path, sweep, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                          "--process-name LokyProcess")
    assert code == 2 and "Traceback" not in err
    errors = error_lines(err)
    assert len(errors) == 1 and "a joblib worker process died" in errors[0]
    assert not any((d / "model.keras").exists() for d in job_dirs(sweep)), "the other job was stopped too"


def test_a_sweep_dir_holding_another_sweep_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    first = run_cli("-m", "optimizer.lr=1e-2", *TINY, "trainer.epochs=1", f"hydra.sweep.dir={sweep}",
                    cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    before = (sweep / "0" / "model.keras").stat().st_mtime_ns
    other = run_cli("-m", "optimizer.lr=1e-3", *TINY, "trainer.epochs=1", f"hydra.sweep.dir={sweep}",
                    cwd=tmp_path, timeout=300)
    assert other.returncode == 2 and "holds another sweep" in other.stderr and "Traceback" not in other.stderr
    assert (sweep / "0" / "model.keras").stat().st_mtime_ns == before
