"""Kill a search or a sweep at any moment, run it again, lose nothing; one writer per folder."""

import json
import random
import signal
import subprocess
from pathlib import Path

import keras
import pytest

from conftest import TINY, cli_command, cli_env, error_lines, run_cli, run_in_process, search_args, wait_for
from imgexp.folder_lock import is_locked
from imgexp.run_folder import read_history


def start(args, cwd):
    return subprocess.Popen(cli_command(*args), cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()


def second_copy_is_refused(args, cwd, folder, what: str) -> None:
    """Start the command, and once it holds `folder` the same command again: one line naming the first."""
    first = start(args, cwd)
    try:
        assert wait_for(lambda: is_locked(folder), 300, every=0.05, process=first), \
            f"the first {what} never took its folder"
        second = run_cli(*args, cwd=cwd)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        [line] = error_lines(second.stderr)
        assert f"{folder}: this {what} is in use by process {first.pid} on " in line
    finally:
        kill(first)
    assert not is_locked(folder), "a SIGKILL leaves no lock behind"


def test_a_second_copy_of_a_search_stops_in_one_line(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.005, 0.003]}, "trainer.epochs=30")
    second_copy_is_refused(args, tmp_path, tmp_path / "search" / "grid-test", "search")


def test_a_second_run_in_the_same_folder_stops_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    second_copy_is_refused([*TINY, "trainer.epochs=50", f"hydra.run.dir={run_dir}"], tmp_path, run_dir, "run")
    assert not (run_dir / "metrics.json").exists()


def finished_trials(search_dir: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in search_dir.glob("trial_*/metrics.json")}


def test_a_cut_oracle_state_is_rebuilt_from_the_trials(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": {"min": 1e-3, "max": 1e-2}}, "tuner.max_trials=2",
                       tuner="random")
    assert run_in_process(*args, cwd=tmp_path).returncode == 0
    search_dir = tmp_path / "search" / "random-test"
    before = finished_trials(search_dir)
    oracle = search_dir / "oracle.json"
    original = json.loads(oracle.read_text())
    oracle.write_text(oracle.read_text()[:40])
    again = run_in_process(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "oracle.json was damaged; rebuilt from the 2 trials on disk" in again.stdout + again.stderr
    assert finished_trials(search_dir) == before, "no finished trial ran again"
    rebuilt = json.loads(oracle.read_text())
    for key in ("start_order", "end_order", "id_to_hash", "seed", "seed_state", "hyperparameters", "retry_queue"):
        assert rebuilt[key] == original[key], key  # what KerasTuner itself had saved
    assert set(rebuilt["tried_so_far"]) == set(original["tried_so_far"])


def test_a_cut_hyperband_state_is_one_line(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.003]}, "tuner.max_epochs=2", "tuner.factor=2",
                       tuner="hyperband")
    assert run_in_process(*args, cwd=tmp_path).returncode == 0
    oracle = tmp_path / "search" / "hyperband-test" / "oracle.json"
    oracle.write_text("{")
    again = run_in_process(*args, cwd=tmp_path)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    [line] = error_lines(again.stderr)
    assert "oracle.json: damaged" in line and "HyperbandOracle" in line


def kill_at_random_moments(args, cwd, kills: int, seed: int, done) -> int:
    """Start the command and SIGKILL it after a seeded random delay, `kills` times at most (sooner if it
    ends by itself); then run it to its end. Returns how many kills landed."""
    rng, landed = random.Random(seed), 0
    for _ in range(kills):
        process = start(args, cwd)
        try:
            process.wait(timeout=rng.uniform(5.5, 11.0))  # TensorFlow's start-up is ~5 s of it
            if done():
                return landed
        except subprocess.TimeoutExpired:
            kill(process)
            landed += 1
    final = run_cli(*args, cwd=cwd, timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]
    return landed


def check_histories(run_dirs: list[Path]) -> None:
    """Every run finished (or pruned) once, with epochs 0..n-1 recorded once each."""
    for run_dir in run_dirs:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] in ("finished", "pruned"), run_dir
        lines = (run_dir / "history.csv").read_text().splitlines()[1:]
        epochs = [int(line.split(",")[0]) for line in lines]
        assert epochs == list(range(len(epochs))) and len(epochs) == metrics["epochs_run"], run_dir
        assert not (run_dir / "failed.json").exists(), run_dir


@pytest.mark.slow
def test_a_continuing_hyperband_search_killed_at_random_moments_loses_nothing(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": {"min": 1e-3, "max": 3e-2, "sampling": "log"}},
                       "tuner.max_epochs=8", "tuner.factor=2", tuner="hyperband")
    search_dir = tmp_path / "search" / "hyperband-test"
    landed = kill_at_random_moments(args, tmp_path, kills=10, seed=17,
                                    done=lambda: (search_dir / "best" / "model.keras").exists())
    assert landed >= 3, "the kills must land while the search runs"
    trials = sorted(search_dir.glob("trial_*"))
    states = {t.name: json.loads((t / "trial.json").read_text())["status"] for t in trials}
    assert set(states.values()) == {"COMPLETED"}, states
    check_histories(trials)
    continued = 0
    for trial in trials:
        metrics = json.loads((trial / "metrics.json").read_text())
        if "continued_from" in metrics:
            continued += 1
            parent = read_history(search_dir / f"trial_{metrics['continued_from'].removeprefix('trial_')}" / "history.csv")
            own = read_history(trial / "history.csv")
            start = len(own) - metrics["epochs_trained"]
            strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]  # noqa: E731
            assert strip(own[:start]) == strip(parent[:start]), trial
    assert continued >= 1
    keras.models.load_model(search_dir / "best" / "model.keras")


@pytest.mark.slow
def test_a_pruned_sweep_killed_at_random_moments_loses_nothing(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", *TINY, "trainer.epochs=4", "pruner=median", "pruner.warmup_epochs=1", "pruner.min_trials=1",
            "optimizer.lr=0.02,0.005,0.0003,0.00005", f"hydra.sweep.dir={sweep_dir}"]
    kill_at_random_moments(args, tmp_path, kills=6, seed=5, done=lambda: len(list(sweep_dir.glob("*/metrics.json"))) == 4)
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    check_histories(jobs)
