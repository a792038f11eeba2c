"""KerasTuner searches: trials are runs, failures are recorded, a killed search resumes."""

import json
import signal
import subprocess

import pytest
import yaml
from tensorboard.plugins.hparams import api_pb2

from conftest import cli_command, cli_env, error_lines, run_cli, run_in_process, search_args, trial_dirs, wait_for
from tbread import SESSION_GROUPS, TensorBoardServer, accumulator, hparams_session


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("search3")
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.003, 0.001]}, "tuner.max_trials=3")
    result = run_in_process(*args, cwd=tmp_path)
    return tmp_path, tmp_path / "search" / "grid-test", result


def test_search_runs_each_trial_as_a_run(three_trials):
    _, search_dir, result = three_trials
    assert result.returncode == 0, result.stderr[-3000:]
    trials = trial_dirs(search_dir)
    assert len(trials) == 3
    lrs = set()
    for trial in trials:
        assert (trial / "model.keras").is_file() and (trial / "metrics.json").is_file()
        hparams, status = hparams_session(trial / "tb")
        assert status == api_pb2.STATUS_SUCCESS and hparams["model"] == "cnn"
        lrs.add(hparams["optimizer.lr"])
    assert lrs == {0.01, 0.003, 0.001}
    log = result.stdout + result.stderr
    assert "trial 3 of 3" in log and "best" in log and "ETA" in log
    assert "3 trials in" in result.stdout


def test_the_search_declares_its_space_first_in_tensorboards_hparams_table(three_trials):
    tmp_path, search_dir, _ = three_trials
    with TensorBoardServer(search_dir.parent) as server:
        experiment = server.post("experiment", {"experimentName": ""}, ready=lambda a: bool(a.get("hparamInfos")))
        groups = server.post("session_groups", SESSION_GROUPS,
                             ready=lambda a: len(a.get("sessionGroups", [])) >= 3)["sessionGroups"]
    first = experiment["hparamInfos"][0]
    assert first["name"] == "optimizer.lr" and first["domainDiscrete"] == [0.01, 0.003, 0.001]
    assert [m.get("displayName") for m in experiment["metricInfos"]][:2] == ["val_accuracy", "val_loss"]
    names = sorted(g["name"] for g in groups)
    assert len(names) == 3 and all(n.startswith("trial_") and n.endswith(" (search/grid-test)") for n in names), names


def test_best_trial_config_runs_again_as_is(three_trials):
    tmp_path, search_dir, _ = three_trials
    best = search_dir / "best"
    metrics = json.loads((best / "metrics.json").read_text())
    all_scores = [json.loads((t / "metrics.json").read_text())["val_accuracy"] for t in trial_dirs(search_dir)]
    assert metrics["val_accuracy"] == max(all_scores)
    rerun = tmp_path / "rerun"
    result = run_cli(str(best), f"hydra.run.dir={rerun}", cwd=tmp_path, timeout=600, module="imgexp.rerun")
    assert result.returncode == 0, result.stderr[-3000:]
    saved, ran = yaml.safe_load((best / "best.yaml").read_text()), yaml.safe_load((rerun / ".hydra" / "config.yaml").read_text())
    assert "hydra" not in saved and "defaults" not in saved, "best.yaml is data, not a Hydra primary config"
    for group in ("dataset", "model", "optimizer", "trainer"):
        assert ran[group] == saved[group], group
    assert json.loads((rerun / "metrics.json").read_text())["val_accuracy"] == metrics["val_accuracy"]


def test_failing_and_nan_trials_are_recorded_and_the_search_completes(tmp_path):
    args = search_args(tmp_path, {"model.dropout": [0.2, 1.5], "optimizer.lr": [0.003, 1.0e12]},
                       "tuner.max_trials=4", "tuner.max_consecutive_failed_trials=10")
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = {}
    for trial in trial_dirs(tmp_path / "search" / "grid-test"):
        values = yaml.safe_load((trial / ".hydra" / "overrides.yaml").read_text())
        key = (next(v for v in values if v.startswith("model.dropout")), next(v for v in values if v.startswith("optimizer.lr")))
        errors[key] = json.loads((trial / "failed.json").read_text())["error"] if (trial / "failed.json").exists() else None
        _, status = hparams_session(trial / "tb")
        assert status == (api_pb2.STATUS_SUCCESS if errors[key] is None else api_pb2.STATUS_FAILURE)
    assert errors[("model.dropout=0.2", "optimizer.lr=0.003")] is None
    assert "NaN" in errors[("model.dropout=0.2", "optimizer.lr=1000000000000.0")]
    assert "model.dropout=1.5" in errors[("model.dropout=1.5", "optimizer.lr=0.003")]
    assert "failed" in result.stdout
    assert "FailedTrialError" not in result.stdout, "the reason, without KerasTuner's class name"
    assert "Traceback" not in result.stderr, "a trial that cannot train is reported in one line"


def test_invalid_space_fails_before_the_first_trial(tmp_path):
    result = run_in_process(*search_args(tmp_path, {"model.dropuot": [0.1, 0.2]}), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "model.dropuot is not a config key" in lines[0]
    assert not list((tmp_path / "search").glob("*/trial_*"))


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path):
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.005, 0.003, 0.001]}, "tuner.max_trials=4",
                       "trainer.epochs=3")
    search_dir = tmp_path / "search" / "grid-test"
    first = subprocess.Popen(cli_command(*args), cwd=tmp_path, env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: len(list(search_dir.glob("trial_*/metrics.json"))) >= 2, 300, every=0.1, process=first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in search_dir.glob("trial_*/metrics.json")}
    assert 2 <= len(finished) < 4, "killed mid-search"

    second = run_cli(*args, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    after = {p.parent.name: p.stat().st_mtime_ns for p in search_dir.glob("trial_*/metrics.json")}
    assert len(after) == 4
    assert all(after[name] == mtime for name, mtime in finished.items()), "finished trials were not run again"
    oracle = json.loads((search_dir / "oracle.json").read_text())
    assert len(oracle["start_order"]) == 4


@pytest.mark.parametrize("tuner, extra, expected", [
    ("random", ["tuner.max_trials=2"], 2),
    ("bayesian", ["tuner.max_trials=2", "tuner.num_initial_points=1"], 2),
    ("hyperband", ["tuner.max_epochs=2", "tuner.factor=2"], None),
    ("random", ["tuner.max_trials=5", "tuner.budget_minutes=0.001"], 1),  # the budget stops new trials
])
def test_every_tuner_runs_trials(tmp_path, tuner, extra, expected):
    args = search_args(tmp_path, {"optimizer.lr": {"min": 1e-3, "max": 1e-2, "sampling": "log"}}, *extra, tuner=tuner)
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    finished = list((tmp_path / "search" / f"{tuner}-test").glob("trial_*/metrics.json"))
    assert len(finished) == expected if expected else len(finished) >= 2
    if tuner == "hyperband":  # hyperband sets each trial's epochs
        epochs = {json.loads(p.read_text())["epochs_run"] for p in finished}
        assert epochs <= {1, 2}
        assert not any(p.name.startswith("tuner/") for p in declared_hparams(tmp_path / "search" / f"{tuner}-test"))
    else:  # a range is declared as an interval
        lr = declared_hparams(tmp_path / "search" / f"{tuner}-test")[0]
        assert lr.name == "optimizer.lr" and (lr.domain_interval.min_value, lr.domain_interval.max_value) == (1e-3, 1e-2)


def declared_hparams(search_dir):
    """The hparam infos of the search's HParams experiment, read back from its event file."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    contents = accumulator(search_dir / "hparams_experiment").PluginTagToContent("hparams")
    return list(plugin_data_pb2.HParamsPluginData.FromString(contents["_hparams_/experiment"]).experiment.hparam_infos)


@pytest.mark.slow
def test_recycled_workers_share_one_search(tmp_path):
    """search.recycle_every=2: trials run in fresh worker processes that resume the same search."""
    args = search_args(tmp_path, {"optimizer.lr": [0.01, 0.005, 0.003, 0.001]}, "tuner.max_trials=4",
                       "search.recycle_every=2")
    result = run_cli(*args, cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    search_dir = tmp_path / "search" / "grid-test"
    log = [json.loads(line) for line in (search_dir / "trials.jsonl").read_text().splitlines()]
    assert sorted(e["trial_id"] for e in log) == ["0", "1", "2", "3"]
    pids = [e["pid"] for e in log]
    assert len(set(pids)) == 2 and pids[0] == pids[1] and pids[2] == pids[3]
    assert (search_dir / "best" / "model.keras").is_file()
    assert "4 trials in" in result.stdout
