"""Pruning (pruner=median|asha) in multirun sweeps and searches (Hyperband's continued trials: test_continuation.py)."""

import csv
import json
import signal
import subprocess
import sys

import pytest

from conftest import TINY, cli_env, epoch_rows, error_lines, run_cli, run_in_process, search_args, trial_dirs, unwrapped
from imgexp.compose import compose_config
from imgexp.config import PrunerConfig, PrunerName
from imgexp.training.pruning import make_pruner
from imgexp.training.pruning_rules import asha_rule, median_rule, values_by_epoch
from tbread import hparams_session, scalars

# Hopeless learning rates (0.5, 0.9) between good ones: pruning has something to find.
SWEEP = ["optimizer.lr=0.003,0.5,0.002,0.9", *TINY, "trainer.epochs=4"]


def median(**kwargs) -> PrunerConfig:
    return PrunerConfig(name=PrunerName.median, **{"warmup_epochs": 1, "min_trials": 1, **kwargs})


def test_the_median_rule_waits_for_warmup_and_min_trials_then_compares_the_best_so_far():
    others = [{1: 0.5, 2: 0.6, 3: 0.7}, {1: 0.3, 2: 0.4}]
    own = {1: 0.45, 2: 0.46, 3: 0.52}
    assert median_rule(own, others, 1, median(warmup_epochs=2), True) is None  # warm-up
    assert median_rule(own, others, 3, median(min_trials=2), True) is None  # one other reached epoch 3
    assert median_rule(own, others, 1, median(), True) is None  # 0.45 vs median 0.4: better
    decision = median_rule(own, others, 2, median(), True)
    assert decision and decision.epoch == 2 and "median 0.5000" in decision.reason  # 0.46 < (0.6 + 0.4) / 2
    losses = [{1: 1.0}, {1: 1.2}]
    assert median_rule({1: 1.05}, losses, 1, median(), maximize=False) is None  # 1.05 < median 1.1: better
    assert median_rule({1: 1.15}, losses, 1, median(), maximize=False) is not None


def test_asha_decides_at_rungs_only_and_keeps_the_top_third():
    cfg = PrunerConfig(name=PrunerName.asha, min_epochs=1, factor=3, min_trials=2)
    others = [{1: 0.9, 3: 0.95}, {1: 0.8, 3: 0.85}, {1: 0.2, 3: 0.3}, {1: 0.1}, {1: 0.05}]
    assert asha_rule({1: 0.5, 2: 0.6}, others, 2, cfg, True) is None  # epoch 2 is no rung (1, 3, 9, ...)
    assert asha_rule({1: 0.85}, others, 1, cfg, True) is None  # 2nd of 6: top 6 // 3 = 2
    assert asha_rule({1: 0.5}, others, 1, cfg, True) is not None  # 3rd of 6
    assert asha_rule({3: 0.99}, others, 3, cfg, True) is None  # best at the rung of 4
    assert asha_rule({3: 0.5}, others[:1], 3, cfg, True) is None  # one other reached it: min_trials=2


def test_the_pruner_reads_pruner_monitor_which_defaults_to_val_loss(tmp_path):
    for overrides, monitor, maximize in (([], "val_loss", False), (["pruner.monitor=val_accuracy"], "val_accuracy", True)):
        cfg, _ = compose_config(["pruner=asha", *overrides])
        assert cfg.pruner.min_epochs == 2  # no rung at epoch 1, where most trials sit at chance level
        pruner = make_pruner(cfg, tmp_path / "run", cohort=tmp_path)
        assert (pruner.monitor, pruner.maximize) == (monitor, maximize)


def first_pruning_epoch(run_dir, others, cfg) -> int | None:
    """Replay the median rule over this run's val_loss (pruner.monitor's default) against the other jobs'
    full histories."""
    own = values_by_epoch(run_dir / "history.csv", "val_loss")
    for epoch in sorted(own):
        so_far = {e: v for e, v in own.items() if e <= epoch}
        if median_rule(so_far, others, epoch, cfg, maximize=False):
            return epoch
    return None


@pytest.fixture(scope="module")
def pruned_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pruned-sweep")
    sweep = tmp_path / "sweep"
    result = run_in_process("-m", *SWEEP, "pruner=median", "pruner.warmup_epochs=1", "pruner.min_trials=1",
                            f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    return tmp_path, sweep, result


def test_a_sweep_prunes_hopeless_jobs_at_the_epoch_the_rule_says(pruned_sweep):
    _, sweep, result = pruned_sweep
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = {job: json.loads((sweep / str(job) / "metrics.json").read_text()) for job in range(4)}
    assert jobs[0]["status"] == "finished" and jobs[0]["epochs_run"] == 4
    assert jobs[1]["status"] == jobs[3]["status"] == "pruned"  # lr 0.5 and 0.9
    for job, metrics in jobs.items():
        if metrics["status"] != "pruned":
            continue
        # Sequential jobs: job k saw jobs 0..k-1 in full.
        others = [values_by_epoch(sweep / str(j) / "history.csv", "val_loss") for j in range(job)]
        assert metrics["pruned_at_epoch"] == first_pruning_epoch(sweep / str(job), others, median())
        assert json.loads((sweep / str(job) / "pruned.json").read_text())["reason"].startswith("val_loss: ")
        assert metrics["epochs_run"] == metrics["pruned_at_epoch"]
        assert (sweep / str(job) / "model.keras").is_file()  # a pruned run keeps its best model
        assert scalars(sweep / str(job) / "tb", "pruned") == [1.0]
        assert hparams_session(sweep / str(job) / "tb")[1] is not None  # its session ended
    assert scalars(sweep / "0" / "tb", "pruned") == [0.0]
    assert "pruned" in result.stdout and "failed" not in result.stderr.lower()


def test_compare_lists_pruned_jobs_with_their_epochs(pruned_sweep):
    tmp_path, sweep, _ = pruned_sweep
    result = run_cli(str(sweep), "--csv", str(tmp_path / "table.csv"), module="imgexp.compare", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {r["run"]: r for r in csv.DictReader((tmp_path / "table.csv").open())}
    assert rows["1"]["status"] == "pruned" and rows["1"]["epochs_run"] == str(
        json.loads((sweep / "1" / "metrics.json").read_text())["epochs_run"])
    assert rows["0"]["status"] == "finished"


KILLED_AFTER_THE_DECISION = """
import os, signal, sys
from pathlib import Path

import imgexp.training.run as run

evaluate = run.evaluate_best

def killed_once_pruned(model, cfg, head, source, val_ds, run_dir, *rest):
    if (Path(run_dir) / "pruned.json").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return evaluate(model, cfg, head, source, val_ds, run_dir, *rest)

run.evaluate_best = killed_once_pruned
from imgexp.app import main
sys.argv = ["imgexp", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_a_job_killed_after_its_pruning_decision_resumes_without_training_further(tmp_path):
    """SIGKILL between the decision (pruned.json) and metrics.json; the same command then finishes the job
    as pruned, with no epoch added."""
    args = ["-m", "optimizer.lr=0.003,0.9", *TINY, "trainer.epochs=4", "pruner=median", "pruner.warmup_epochs=1",
            "pruner.min_trials=1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    job = tmp_path / "sweep" / "1"
    # The process kills itself with SIGKILL as the pruned job starts its evaluation: after the decision,
    # before metrics.json, every time (polling for pruned.json from here could lose the race).
    first = subprocess.run([sys.executable, "-c", KILLED_AFTER_THE_DECISION, *args], cwd=tmp_path, env=cli_env(),
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert (job / "pruned.json").is_file() and not (job / "metrics.json").exists()
    epochs = len(epoch_rows(job))
    again = run_cli(*args, cwd=tmp_path, timeout=600)
    failures = {p.parent.name: p.read_text() for p in (tmp_path / "sweep").glob("*/failed.json")}
    assert again.returncode == 0, (again.stderr[-3000:], failures)
    assert len(epoch_rows(job)) == epochs
    assert json.loads((job / "metrics.json").read_text())["status"] == "pruned"


def test_a_single_run_with_a_pruner_trains_to_its_end(tmp_path):
    result = run_in_process(*TINY, "pruner=median", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run/metrics.json").read_text())["status"] == "finished"
    assert "this single run trains to its end" in result.stdout + result.stderr


def test_a_search_prunes_and_keras_tuner_gets_the_best_value_so_far(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.003, 0.9, 0.002, 0.95]}, "tuner.max_trials=4",
                       "trainer.epochs=3", "pruner=asha", "pruner.min_trials=1")
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    search_dir = tmp_path / "search" / "grid-test"
    pruned = [t for t in trial_dirs(search_dir) if json.loads((t / "metrics.json").read_text())["status"] == "pruned"]
    assert pruned, "the hopeless learning rates were not pruned"
    for trial in pruned:
        metrics = json.loads((trial / "metrics.json").read_text())
        oracle_trial = json.loads((trial / "trial.json").read_text())
        assert oracle_trial["status"] == "COMPLETED"
        assert oracle_trial["score"] == pytest.approx(metrics["val_accuracy"])
    assert "pruned" in result.stdout  # the search's ranked table
    before = {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(search_dir)}
    again = run_in_process(*args, cwd=tmp_path)  # the same command: the search resumes, decisions kept
    assert again.returncode == 0, again.stderr[-3000:]
    assert {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(search_dir)} == before
    assert all(json.loads((t / "metrics.json").read_text())["status"] == "pruned" for t in pruned)


def test_pruning_with_hyperband_is_refused_in_one_line(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.003, 0.001]}, "pruner=median", tuner="hyperband")
    result = run_in_process(*args, cwd=tmp_path)
    lines = error_lines(result.stderr)
    assert result.returncode == 2 and len(lines) == 1 and "Hyperband already stops" in lines[0], result.stderr
    assert not (tmp_path / "search").exists()


@pytest.mark.slow
def test_pruning_works_across_two_local_workers(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.003, 0.002, 0.9, 0.95]}, "tuner.max_trials=4",
                       "trainer.epochs=4", "pruner=median", "pruner.warmup_epochs=1", "pruner.min_trials=1",
                       "search.distributed.local_workers=2")
    result = run_cli(*args, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    search_dir = tmp_path / "search" / "grid-test"
    statuses = {t.name: json.loads((t / "metrics.json").read_text())["status"] for t in trial_dirs(search_dir)}
    assert len(statuses) == 4 and "pruned" in statuses.values(), statuses
    workers = {json.loads(line)["tuner_id"] for line in (search_dir / "trials.jsonl").read_text().splitlines()}
    assert len(workers) == 2


@pytest.mark.slow
def test_a_sweep_through_the_joblib_launcher_prunes(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "optimizer.lr=0.003,0.002,0.9,0.95", *TINY, "trainer.epochs=4", "pruner=median",
                     "pruner.warmup_epochs=1", "pruner.min_trials=1", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = {job: json.loads((sweep / str(job) / "metrics.json").read_text())["status"] for job in range(4)}
    assert "pruned" in (statuses[2], statuses[3]), statuses  # lr 0.9 and 0.95, after the good ones ran


@pytest.mark.slow
def test_a_sweep_through_the_ray_launcher_runs_jobs_in_ray_workers_and_prunes(tmp_path):
    """Hydra's Ray launcher on a local Ray instance of 2 CPUs: each job runs in a Ray worker process, two at
    a time, and the pruner reads the others' history.csv in the sweep folder as with any launcher."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher",
                        reason="pip install 'imgexp[ray]' (hydra-ray-launcher and Ray; in an environment of its own)")
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                     "optimizer.lr=0.003,0.002,0.9,0.95", *TINY, "trainer.epochs=4", "pruner=median",
                     "pruner.warmup_epochs=1", "pruner.min_trials=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                     timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(_run_job pid=" in result.stdout + result.stderr, "the jobs ran in Ray's worker processes"
    statuses = {job: json.loads((sweep / str(job) / "metrics.json").read_text())["status"] for job in range(4)}
    assert "pruned" in (statuses[2], statuses[3]), statuses  # lr 0.9 and 0.95, after the good ones ran
    assert "4 jobs in" in unwrapped(result.stdout) and "ranked by val_accuracy" in unwrapped(result.stdout)


def test_another_trials_history_is_read_while_it_is_being_written(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_accuracy\n0,1.0,0.5\n1,0.9,nan\n2,0.8")  # the last row cut short
    assert values_by_epoch(history, "val_accuracy") == {1: 0.5}
    assert values_by_epoch(tmp_path / "missing.csv", "val_accuracy") == {}
