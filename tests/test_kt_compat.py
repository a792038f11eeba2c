"""Each private part of KerasTuner imgexp relies on (imgexp/tuning/kt_compat.py), checked against the
installed release: a KerasTuner that changes one fails here, by name."""

import importlib.metadata
import json
import tomllib
from pathlib import Path

import grpc
import keras_tuner as kt
import pytest
from concurrent import futures

from imgexp.tuning import kt_compat
from imgexp.tuning.tuner import HYPERBAND_EPOCHS, HYPERBAND_INITIAL_EPOCH, HYPERBAND_PARENT


def oracle(tmp_path, cls=kt.oracles.RandomSearchOracle, **kwargs):
    hp = kt.HyperParameters()
    hp.Choice("x", [1, 2, 3])
    found = cls(objective=kt.Objective("score", "max"), hyperparameters=hp, seed=1, **kwargs)
    found._set_project_dir(str(tmp_path), "p")  # what a tuner does with its oracle
    return found


def end(o, trial, status="COMPLETED", score=1.0):
    if status == "COMPLETED":
        o.update_trial(trial.trial_id, {"score": score})
    trial.status = status
    o.end_trial(trial)


def test_the_installed_keras_tuner_is_the_tested_one_and_pyproject_bounds_it():
    assert importlib.metadata.version("keras-tuner") == kt_compat.TESTED_VERSION
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirement = next(r for r in project["dependencies"] if r.startswith("keras-tuner"))
    assert f"<={kt_compat.TESTED_VERSION}" in requirement


class FailingTuner(kt_compat.BaseTuner):
    def run_trial(self, trial, *args, **kwargs):
        raise kt.errors.FailedTrialError("this trial cannot work")


def failed_trial_output(tmp_path, capfd) -> str:
    """What KerasTuner prints while one of its trials fails."""
    tuner = FailingTuner(oracle=oracle(tmp_path, max_trials=1), directory=str(tmp_path), project_name="t",
                         overwrite=True)
    capfd.readouterr()
    tuner.search(verbose=0)
    captured = capfd.readouterr()
    return captured.out + captured.err


def test_quiet_failed_trials_stops_keras_tuners_traceback_per_failed_trial(tmp_path, capfd, monkeypatch):
    from keras_tuner.src import config

    monkeypatch.setattr(config, "DEBUG", True)  # KerasTuner's default
    assert "Traceback" in failed_trial_output(tmp_path / "loud", capfd)
    kt_compat.quiet_failed_trials()
    assert "Traceback" not in failed_trial_output(tmp_path / "quiet", capfd)


def test_a_tuner_knows_whether_it_is_a_distributed_worker(tmp_path, monkeypatch):
    tuner = kt_compat.BaseTuner(oracle=oracle(tmp_path), directory=str(tmp_path), project_name="t")
    assert kt_compat.is_worker(tuner) is False
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-1")  # what connect_as_worker sets
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    assert kt_compat.is_worker(tuner) is True


def test_too_many_failed_trials_is_a_runtime_error_with_the_text_imgexp_matches(tmp_path):
    o = oracle(tmp_path, max_trials=5, max_consecutive_failed_trials=2)
    with pytest.raises(RuntimeError) as err:
        for _ in range(2):
            end(o, o.create_trial("tuner0"), "FAILED")  # the second one raises in end_trial
    assert kt_compat.is_too_many_failures(err.value)


def test_the_consecutive_failures_check_can_be_replaced(tmp_path):
    o = oracle(tmp_path, max_trials=5, max_consecutive_failed_trials=1)
    seen = []
    kt_compat.on_consecutive_failures_check(o, lambda original: seen.append(original))
    trial = o.create_trial("tuner0")
    end(o, trial, "FAILED")  # KerasTuner calls the check when a trial ends
    assert seen and callable(seen[0])


def test_a_reloaded_grid_search_keeps_its_order(tmp_path):
    first = oracle(tmp_path, kt_compat.ResumableGridSearchOracle, max_trials=3)
    trial = first.create_trial("tuner0")
    end(first, trial)
    first.save()
    again = oracle(tmp_path, kt_compat.ResumableGridSearchOracle, max_trials=3)
    again.reload()
    values = [again.create_trial("tuner0").hyperparameters.values["x"]]
    assert values == [2]  # the grid goes on where it was, not a KeyError


def test_oracle_attributes_imgexp_reads(tmp_path):
    o = oracle(tmp_path, max_trials=2)
    trial = o.create_trial("tuner0")
    assert o.ongoing_trials == {"tuner0": trial} and o.start_order == [trial.trial_id]
    end(o, trial)
    assert o.end_order == [trial.trial_id] and o.trials[trial.trial_id].score == 1.0
    o.max_trials = 1  # how imgexp stops a search from starting new trials
    assert o.create_trial("tuner0").status == "STOPPED"


def test_hyperband_names_a_promoted_trials_parent_and_initial_epoch(tmp_path):
    o = oracle(tmp_path, kt.oracles.HyperbandOracle, max_epochs=2, factor=2)
    first_round = [o.create_trial(f"tuner{i}") for i in range(2)]
    for score, trial in enumerate(first_round):
        assert trial.hyperparameters.values[HYPERBAND_EPOCHS] == 1
        end(o, trial, score=float(score))
    promoted = o.create_trial("tuner0").hyperparameters.values
    assert promoted[HYPERBAND_PARENT] == first_round[1].trial_id  # the better one
    assert promoted[HYPERBAND_INITIAL_EPOCH] == 1 and promoted[HYPERBAND_EPOCHS] == 2


def test_the_chief_servicer_serves_an_oracle_and_says_when_to_stop(tmp_path):
    o = oracle(tmp_path, max_trials=1)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = kt_compat.add_oracle_servicer(o, server)
    try:
        assert kt_compat.chief_may_stop(servicer, o) is False  # no worker was told to stop yet
        servicer.stop_triggered = True
        assert kt_compat.chief_may_stop(servicer, o) is True  # nothing running
    finally:
        server.stop(grace=0)


def test_the_worker_timeout_bounds_each_call_to_the_chief(tmp_path, monkeypatch):
    """A worker whose chief does not answer gives up after set_worker_timeout's seconds (KerasTuner's
    own client waits an hour), with gRPC's DEADLINE_EXCEEDED."""
    import socket

    from keras_tuner.src.distribute import oracle_client

    listener = socket.socket()  # a port that accepts connections and never answers: a hung chief
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(listener.getsockname()[1]))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-1")
    monkeypatch.setattr(oracle_client, "TIMEOUT", oracle_client.TIMEOUT)  # restored after the test
    kt_compat.set_worker_timeout(0.5)
    try:
        with pytest.raises(grpc.RpcError) as err:
            oracle_client.OracleClient(oracle(tmp_path)).get_space()
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        listener.close()


def test_state_files_are_written_whole(tmp_path):
    from keras_tuner.src import utils as kt_utils

    kt_compat.write_state_files_atomically()
    path = tmp_path / "oracle.json"
    kt_utils.save_json(str(path), {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"], "no temporary file left beside it"
