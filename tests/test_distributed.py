"""KerasTuner's chief/worker mode on 127.0.0.1: trials split over workers, a killed worker restarted.

Every process here runs with a timeout, so no test can hang.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from tensorboard.plugins.hparams import api_pb2

from conftest import cli_command, cli_env, error_lines, run_cli, search_args, trial_dirs, wait_for
from tbread import hparams_session

SPACE = {"optimizer.lr": {"min": 1e-3, "max": 1e-2, "sampling": "log"}, "model.dropout": [0.1, 0.3]}
SIX_TRIALS = ("tuner.max_trials=6", "trainer.deterministic=true", "search.distributed.status_every=5")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(address: str, process: subprocess.Popen, timeout: float = 120) -> None:
    host, port = address.rsplit(":", 1)

    def listening() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return True
        except OSError:
            return False

    if not wait_for(listening, timeout, every=0.2, process=process):
        raise AssertionError(f"nothing listened on {address} within {timeout} s")


def trials_log(search_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (search_dir / "trials.jsonl").read_text().splitlines()]


def trial_results(search_dir: Path) -> dict[str, tuple[dict, float | None]]:
    """KerasTuner's own record of each trial: its values and score."""
    results = {}
    for trial in trial_dirs(search_dir):
        saved = json.loads((trial / "trial.json").read_text())
        results[saved["trial_id"]] = (saved["hyperparameters"]["values"], saved["score"])
    return results


def wait_all(processes: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        for p in processes:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


@pytest.fixture(scope="module")
def chief_and_two_workers(tmp_path_factory):
    """The several-machines commands, on one machine: a chief and two workers started by hand."""
    tmp_path = tmp_path_factory.mktemp("distributed")
    args = search_args(tmp_path, SPACE, *SIX_TRIALS, tuner="random")
    address = f"127.0.0.1:{free_port()}"
    out = {name: (tmp_path / f"{name}.log").open("w") for name in ("chief", "w1", "w2")}
    chief = subprocess.Popen(cli_command(*args, "search.distributed.role=chief", f"search.distributed.address={address}",
                                         f"hydra.run.dir={tmp_path / 'chief'}"),
                             cwd=tmp_path, env=cli_env(), stdout=out["chief"], stderr=subprocess.STDOUT)
    workers = [subprocess.Popen(cli_command(*args, "search.distributed.role=worker", f"search.distributed.address={address}",
                                            f"search.distributed.tuner_id={name}", f"hydra.run.dir={tmp_path / name}"),
                                cwd=tmp_path, env=cli_env(), stdout=out[name], stderr=subprocess.STDOUT)
               for name in ("w1", "w2")]
    wait_all([chief, *workers], timeout=600)
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in out}
    return tmp_path, [p.returncode for p in (chief, *workers)], logs


@pytest.mark.slow
def test_chief_and_two_workers_split_six_trials(chief_and_two_workers):
    tmp_path, codes, logs = chief_and_two_workers
    assert codes == [0, 0, 0], logs["chief"][-3000:]
    search_dir = tmp_path / "search" / "random-test"
    log = trials_log(search_dir)
    assert sorted(e["trial_id"] for e in log) == ["0", "1", "2", "3", "4", "5"]
    ran = {e["tuner_id"]: sum(1 for x in log if x["tuner_id"] == e["tuner_id"]) for e in log}
    assert set(ran) == {"w1", "w2"} and min(ran.values()) >= 1, ran
    for trial in trial_dirs(search_dir):  # every trial is in the TensorBoard table
        _, status = hparams_session(trial / "tb")
        assert status == api_pb2.STATUS_SUCCESS
    assert "6 trials in" in logs["chief"] and "trial 6 of 6" in logs["chief"]
    assert (search_dir / "best" / "model.keras").is_file()
    oracle = json.loads((search_dir / "oracle.json").read_text())
    assert oracle["ongoing_trials"] == {} and len(oracle["end_order"]) == 6, "saved as finished"


@pytest.mark.slow
def test_distributed_search_finds_what_one_process_finds(chief_and_two_workers):
    """Same seed, same trials: the values per trial id, the scores and so the best trial agree."""
    tmp_path, codes, _ = chief_and_two_workers
    assert codes == [0, 0, 0]
    single = tmp_path / "single"
    result = run_cli(*search_args(single, SPACE, *SIX_TRIALS, tuner="random"),
                     f"hydra.run.dir={single / 'run'}", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    distributed = trial_results(tmp_path / "search" / "random-test")
    alone = trial_results(single / "search" / "random-test")
    assert distributed.keys() == alone.keys() and len(alone) == 6
    for trial_id, (values, score) in alone.items():
        assert distributed[trial_id][0] == values
        assert distributed[trial_id][1] == pytest.approx(score, abs=1e-6)
    def best(search_root):  # the best trial's searched values and score, as best/ records them
        config = yaml.safe_load((search_root / "random-test" / "best" / "best.yaml").read_text())
        score = json.loads((search_root / "random-test" / "best" / "metrics.json").read_text())["val_accuracy"]
        return {key: config[key.split(".")[0]][key.split(".")[1]] for key in SPACE}, score

    assert best(tmp_path / "search") == best(single / "search")


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_restarted_and_the_search_completes(tmp_path):
    args = search_args(tmp_path, SPACE, *SIX_TRIALS, "trainer.epochs=4", "search.distributed.local_workers=2",
                       f"hydra.run.dir={tmp_path / 'chief'}", tuner="random")
    search_dir = tmp_path / "search" / "random-test"
    log_file = (tmp_path / "chief.log").open("w")
    chief = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(), stdout=log_file, stderr=subprocess.STDOUT)

    def kill_worker1_mid_trial() -> tuple[str, int] | None:
        try:
            ongoing = json.loads((search_dir / "oracle.json").read_text())["ongoing_trials"]
            pid = json.loads((tmp_path / "chief" / "workers.json").read_text())["worker1"]["pid"]
        except (OSError, ValueError, KeyError):
            return None  # not written yet, or being written
        trial = ongoing.get("worker1")
        history = search_dir / f"trial_{trial}" / "history.csv"
        if trial is None or not history.exists() or len(history.read_text().splitlines()) < 2:
            return None
        os.kill(pid, signal.SIGKILL)  # mid-trial: the oracle holds the trial, an epoch is done
        return trial, pid

    try:
        killed = wait_for(kill_worker1_mid_trial, 300, every=0.2, process=chief)
        assert killed, "worker1 was never seen running a trial"
        chief.wait(timeout=600)
    finally:
        if chief.poll() is None:
            chief.kill()
    output = (tmp_path / "chief.log").read_text()
    assert chief.returncode == 0, output[-3000:]
    trial, pid = killed
    assert f"worker1 (pid {pid}) was killed by signal 9 during trial {trial}; starting it again" in output
    log = trials_log(search_dir)
    assert sorted(e["trial_id"] for e in log) == ["0", "1", "2", "3", "4", "5"], "every trial once"
    rerun = next(e for e in log if e["trial_id"] == trial)
    assert rerun["tuner_id"] == "worker1" and rerun["pid"] != pid and rerun["status"] == "COMPLETED"
    assert all(status == "COMPLETED" for status in [json.loads((t / "trial.json").read_text())["status"]
                                                     for t in trial_dirs(search_dir)])
    assert json.loads((tmp_path / "chief" / "workers.json").read_text())["worker1"]["starts"] == 2
    assert "6 trials in" in output


def test_failing_trials_stop_a_distributed_search_in_one_line(tmp_path):
    """KerasTuner raises inside the chief's gRPC call here; imgexp stops handing out trials instead."""
    args = search_args(tmp_path, {"model.dropout": [1.5, 2.0]}, "tuner.max_trials=6",
                       "tuner.max_consecutive_failed_trials=2", "search.distributed.local_workers=2", tuner="random")
    result = run_cli(*args, cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "stopped after 2 failed trials in a row" in errors[0]
    assert "must be in [0, 1)" in result.stdout + result.stderr  # each failure's reason, as the chief reports it
    assert len(trial_dirs(tmp_path / "search" / "random-test")) < 6


@pytest.mark.slow
def test_a_worker_whose_chief_dies_stops_in_one_line(tmp_path):
    args = search_args(tmp_path, SPACE, "tuner.max_trials=4", "trainer.epochs=3", tuner="random")
    address = f"127.0.0.1:{free_port()}"
    chief = subprocess.Popen(cli_command(*args, "search.distributed.role=chief", f"search.distributed.address={address}"),
                             cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_listening(address, chief)  # the worker's short timeout is for the chief's death, not its start
    worker = subprocess.Popen(cli_command(*args, "search.distributed.role=worker", f"search.distributed.address={address}",
                                          "search.distributed.connect_timeout=3"),
                              cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        oracle = tmp_path / "search" / "random-test" / "oracle.json"
        wait_for(lambda: oracle.exists() and '"ongoing_trials": {"worker-' in oracle.read_text(), 120, every=0.2,
                 process=worker)
        chief.kill()  # mid-trial: the worker learns it when it reports the trial
        _, err = worker.communicate(timeout=120)
    finally:
        for p in (chief, worker):
            if p.poll() is None:
                p.kill()
    assert worker.returncode == 2 and "Traceback" not in err, err[-3000:]
    errors = error_lines(err)
    assert len(errors) == 1 and f"the chief at {address} stopped answering" in errors[0]


def test_a_worker_without_a_chief_says_so_in_one_line(tmp_path):
    result = run_cli(*search_args(tmp_path, SPACE, tuner="random"), "search.distributed.role=worker",
                     f"search.distributed.address=127.0.0.1:{free_port()}", "search.distributed.connect_timeout=2",
                     cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "search.distributed.address=127.0.0.1:" in errors[0] and "no chief" in errors[0]


@pytest.mark.parametrize("overrides, expected", [
    (["search.distributed.local_workers=2"], "add tuner="),  # no search to spread
    (["tuner=random", "search_space=cnn", "search.distributed.role=worker"], "search.distributed.address=None"),
    (["tuner=random", "search_space=cnn", "search.distributed.role=chief", "search.distributed.address=nohost"],
     "give HOST:PORT"),
    (["tuner=random", "search_space=cnn", "search.distributed.role=chief", "search.distributed.address=h:1",
      "search.distributed.local_workers=2"], "leave search.distributed.role unset"),
])
def test_distributed_settings_that_do_not_fit_fail_in_one_line(tmp_path, overrides, expected):
    result = run_cli(*overrides, f"search.dir={tmp_path}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]


def test_local_workers_get_one_gpu_each_in_turn(tmp_path, monkeypatch):
    from imgexp.tuning.workers import LocalWorkers

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    workers = LocalWorkers(3, tmp_path, max_restarts=1)
    assert [(w.tuner_id, w.gpu) for w in workers.workers] == [("worker1", "3"), ("worker2", "5"), ("worker3", "3")]
