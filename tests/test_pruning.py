"""Pruning (pruner=median|asha) in multirun sweeps and searches, and Hyperband trials that continue
their parent's training."""

import csv
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import TINY, cli_command, cli_env, error_lines, run_cli, run_in_process, search_args, trial_dirs
from imgexp.compose import compose_config
from imgexp.config import PrunerConfig, PrunerName
from imgexp.training.pruning import asha_rule, make_pruner, median_rule, values_by_epoch
from tbread import accumulator, hparams_session, scalars

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


@pytest.mark.slow
def test_a_job_killed_after_its_pruning_decision_resumes_without_training_further(tmp_path):
    """SIGKILL between the decision (pruned.json) and metrics.json; the same command then finishes the job
    as pruned, with no epoch added."""
    args = ["-m", "optimizer.lr=0.003,0.9", *TINY, "trainer.epochs=4", "pruner=median", "pruner.warmup_epochs=1",
            "pruner.min_trials=1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    job = tmp_path / "sweep" / "1"
    first = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None and not (job / "pruned.json").exists():
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert (job / "pruned.json").is_file(), "the hopeless job was not pruned"
    if (job / "metrics.json").exists():
        pytest.skip("the job finished before the kill landed")
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


def epoch_rows(run_dir) -> list[dict]:
    return list(csv.DictReader((run_dir / "history.csv").open()))


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hyperband")
    args = search_args(tmp_path, {"optimizer.lr": {"min": 2e-3, "max": 8e-3, "sampling": "log"}}, "tuner.max_epochs=4",
                       "tuner.factor=2", tuner="hyperband")
    result = run_in_process(*args, cwd=tmp_path)
    return tmp_path / "search" / "hyperband-test", result


def test_a_promoted_hyperband_trial_continues_its_parents_training(hyperband):
    search_dir, result = hyperband
    assert result.returncode == 0, result.stderr[-3000:]
    continued = [t for t in trial_dirs(search_dir) if "continued_from" in json.loads((t / "metrics.json").read_text())]
    assert continued, "no trial was promoted"
    from_scratch = [t for t in trial_dirs(search_dir) if t not in continued]
    first_epoch_from_scratch = min(float(epoch_rows(t)[0]["val_loss"]) for t in from_scratch)
    for trial in continued:
        metrics = json.loads((trial / "metrics.json").read_text())
        parent = search_dir / metrics["continued_from"]
        parent_rows, rows = epoch_rows(parent), epoch_rows(trial)
        start = len(parent_rows)
        assert rows[:start] == parent_rows  # the parent's epochs, then its own, numbered on
        assert [int(r["epoch"]) for r in rows] == list(range(len(rows)))
        assert metrics["epochs_trained"] == len(rows) - start
        parent_best_loss = min(float(r["val_loss"]) for r in parent_rows)
        first_own_loss = float(rows[start]["val_loss"])
        # It starts where its parent stopped, not where a new model starts (chance: ln 10 = 2.3).
        assert first_own_loss < min(parent_best_loss + 0.1, first_epoch_from_scratch), (first_own_loss, parent_best_loss)
        steps = [e.step for e in accumulator(trial / "tb" / "train").Tensors("epoch_loss")]
        assert steps and min(steps) == start  # TensorBoard's epochs continue the parent's too
        hparams, _ = hparams_session(trial / "tb")
        assert not any(name.startswith("tuner/") for name in hparams)


def test_compare_shows_which_trial_a_hyperband_trial_continued(hyperband):
    search_dir, result = hyperband
    assert "continued_from" in result.stdout.replace("\n", "")


def check_continued_trials(search_dir) -> int:
    """Every continued trial starts with its parent's epochs and numbers its own after them."""
    continued = 0
    for trial in trial_dirs(search_dir):
        if not (trial / "metrics.json").is_file():
            continue  # killed on its way
        metrics = json.loads((trial / "metrics.json").read_text())
        if "continued_from" not in metrics:
            continue
        continued += 1
        parent_rows, rows = epoch_rows(search_dir / metrics["continued_from"]), epoch_rows(trial)
        assert rows[:len(parent_rows)] == parent_rows, trial
        assert [int(r["epoch"]) for r in rows] == list(range(len(rows))), trial
    return continued


@pytest.mark.slow
def test_hyperband_continues_across_recycled_workers_and_a_kill(tmp_path):
    """Trials in worker processes replaced every 3 trials; the whole search SIGKILLed once a continued
    trial finished, then the same command finishes it."""
    args = search_args(tmp_path, {"optimizer.lr": {"min": 2e-3, "max": 8e-3, "sampling": "log"}}, "tuner.max_epochs=4",
                       "tuner.factor=2", "search.recycle_every=3", tuner="hyperband")
    search_dir = tmp_path / "search" / "hyperband-test"
    first = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and first.poll() is None and not any(
            "continued_from" in p.read_text() for p in search_dir.glob("trial_*/metrics.json")):
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # the supervisor and its worker
    first.wait(timeout=30)
    assert check_continued_trials(search_dir) >= 1
    second = run_cli(*args, cwd=tmp_path, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert check_continued_trials(search_dir) >= 2
    pids = {json.loads(line)["pid"] for line in (search_dir / "trials.jsonl").read_text().splitlines()}
    assert len(pids) >= 3  # recycled workers of two commands


@pytest.mark.slow
def test_hyperband_continues_with_two_local_workers(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": {"min": 2e-3, "max": 8e-3, "sampling": "log"}}, "tuner.max_epochs=2",
                       "tuner.factor=2", "search.distributed.local_workers=2", tuner="hyperband")
    result = run_cli(*args, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    search_dir = tmp_path / "search" / "hyperband-test"
    assert check_continued_trials(search_dir) >= 1
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


def test_a_continued_trial_goes_on_from_its_parents_last_state_with_its_best_as_best_so_far(tmp_path):
    """The parent's last weights and optimizer state (Adam's moments, its step count) carry over; its
    best weights become the trial's best so far."""
    import keras
    import numpy as np

    from imgexp.models import build_model
    from imgexp.models.serving import with_raw_image_input
    from imgexp.training.continuation import Continuation, restore_optimizer, save_last_state, start_from_parent

    def tiny():
        model = build_model("cnn", (16, 16), 3, filters=[4], dense_units=8)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return model

    parent, child = tmp_path / "trial_0", tmp_path / "trial_1"
    parent.mkdir()
    best, last = tiny(), tiny()  # two different random initialisations
    last.fit(np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)), np.arange(8) % 3, epochs=2, verbose=0)
    with_raw_image_input(best, (16, 16)).save(parent / "model.keras")
    save_last_state(last, parent)
    (parent / "history.csv").write_text("epoch,loss,val_accuracy\n0,1.0,0.5\n1,0.9,0.5\n2,0.8,0.4\n")
    (parent / "labels.json").write_text('["a", "b", "c"]')  # a finished parent trial's other files
    (parent / "metrics.json").write_text('{"val_accuracy": 0.5}')
    model = tiny()
    state = start_from_parent(model, Continuation(parent, "trial_0", initial_epoch=2), child, resumed=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), last.get_weights()))
    restore_optimizer(model, state)
    assert int(model.optimizer.iterations.numpy()) == 2  # two steps of the parent's Adam
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(model.optimizer.variables, last.optimizer.variables))
    saved_best = tiny()
    saved_best.load_weights(child / "checkpoints" / "best.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(saved_best.get_weights(), best.get_weights()))
    assert [r["epoch"] for r in epoch_rows(child)] == ["0", "1"]  # the parent's epochs below initial_epoch
    keras.backend.clear_session()


def test_another_trials_history_is_read_while_it_is_being_written(tmp_path):
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,val_accuracy\n0,1.0,0.5\n1,0.9,nan\n2,0.8")  # the last row cut short
    assert values_by_epoch(history, "val_accuracy") == {1: 0.5}
    assert values_by_epoch(tmp_path / "missing.csv", "val_accuracy") == {}
