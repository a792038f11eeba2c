"""A search knows what it is: the same command continues it, another search in its folder is refused,
and settings that cannot work end in one line before trial 1."""

import json

import pytest

from conftest import error_lines, run_in_process, search_args, trial_dirs

SPACE = {"optimizer.lr": {"min": 1e-3, "max": 1e-2, "sampling": "log"}}



def refused(result, *names: str) -> None:
    lines = error_lines(result.stderr)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in lines[0], lines[0]


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("identity")
    args = search_args(tmp_path, SPACE, "search.name=s", "tuner.max_trials=2", tuner="random")
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp_path, tmp_path / "search" / "s"


def test_the_same_search_with_more_trials_continues(two_trials):
    tmp_path, search_dir = two_trials
    before = {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(search_dir)}
    args = search_args(tmp_path, SPACE, "search.name=s", "tuner.max_trials=3", tuner="random")
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {t.name: (t / "metrics.json").stat().st_mtime_ns for t in trial_dirs(search_dir)}
    assert len(after) == 3 and all(after[name] == mtime for name, mtime in before.items())


@pytest.mark.parametrize("change, names", [
    ({"space": {"optimizer.lr": [0.01, 0.001]}}, ["search_space:", "holds another search"]),
    ({"tuner": "grid"}, ["tuner.name: 'random' -> 'grid'"]),
    ({"extra": ["model.dense_units=64"]}, ["overrides:", "model.dense_units=64"]),
])
def test_another_search_in_the_same_folder_is_refused_naming_the_difference(two_trials, change, names):
    tmp_path, search_dir = two_trials
    before = json.loads((search_dir / "search.json").read_text())
    args = search_args(tmp_path, change.get("space", SPACE), "search.name=s", "tuner.max_trials=3",
                       *change.get("extra", []), tuner=change.get("tuner", "random"))
    result = run_in_process(*args, cwd=tmp_path)
    refused(result, *names)
    assert "search.overwrite=true" in error_lines(result.stderr)[0]
    assert json.loads((search_dir / "search.json").read_text()) == before  # nothing of the search was touched


@pytest.mark.parametrize("extra, names", [
    (["tuner.max_trials=0"], ["tuner.max_trials=0", "never"]),
    (["tuner.max_trials=null"], ["tuner.max_trials=null", "tuner.budget_minutes"]),
    (["dataset=folder", "dataset.path=/no/such/folder"], ["the search's base config", "dataset.path=/no/such/folder"]),
    (["model.dropout=1.5"], ["the search's base config", "model.dropout=1.5"]),
])
def test_settings_that_cannot_work_end_in_one_line_before_trial_1(tmp_path, extra, names):
    result = run_in_process(*search_args(tmp_path, SPACE, *extra, tuner="random"), cwd=tmp_path)
    refused(result, *names)
    assert not list((tmp_path / "search").glob("*/trial_*"))


def test_an_open_ended_search_stops_at_its_budget(tmp_path):
    args = search_args(tmp_path, SPACE, "tuner.max_trials=null", "tuner.budget_minutes=0.001", tuner="random")
    result = run_in_process(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "search" / "random-test").glob("trial_*/metrics.json"))) == 1


def test_a_search_whose_weights_cannot_be_fetched_stops_before_trial_1(tmp_path, monkeypatch):
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # no network, here and on machines that have one
    result = run_in_process("tuner=random", "search_space=transfer", f"search.dir={tmp_path / 'search'}",
                            "trainer.verbose=0", cwd=tmp_path)
    refused(result, "before trial 1", "model=mobilenetv2: could not download the ImageNet weights", "model.weights=null")
    assert not list((tmp_path / "search").glob("*/trial_*"))
