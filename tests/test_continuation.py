"""Hyperband trials that continue their parent's training (training/continuation.py): the promoted trial goes
on from its parent's last weights and optimizer state, in one process, across recycled workers and a kill,
and with local workers."""

import json
import os
import signal
import subprocess

import pytest

from conftest import cli_command, cli_env, epoch_rows, run_cli, run_in_process, search_args, trial_dirs, wait_for
from tbread import accumulator, hparams_session

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
    wait_for(lambda: any("continued_from" in p.read_text() for p in search_dir.glob("trial_*/metrics.json")),
             600, every=0.2, process=first)
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
