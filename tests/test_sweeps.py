"""Hydra multirun: every job a normal run, failures recorded, one ranked table, one TensorBoard table."""

import json

import pytest

from conftest import TINY, run_cli, run_in_process, unwrapped
from tbread import SESSION_GROUPS, TensorBoardServer, hparams_session, scalars
from tensorboard.plugins.hparams import api_pb2

SWEEP = [*TINY, "trainer.epochs=1", "model.dense_units=16,32", "optimizer.lr=0.01,0.001"]


@pytest.fixture(scope="module")
def sweep_2x2(tmp_path_factory):
    sweep_dir = tmp_path_factory.mktemp("sweep")
    result = run_in_process("-m", *SWEEP, f"hydra.sweep.dir={sweep_dir}", cwd=sweep_dir)
    return sweep_dir, result


def test_multirun_runs_four_normal_jobs(sweep_2x2):
    sweep_dir, result = sweep_2x2
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    assert len(jobs) == 4
    for job in jobs:
        assert (job / "model.keras").is_file() and (job / "metrics.json").is_file()
    assert "4 jobs in" in unwrapped(result.stdout) and "ranked by val_accuracy" in unwrapped(result.stdout)


def test_multirun_jobs_are_hparams_sessions_named_by_config_keys(sweep_2x2):
    sweep_dir, _ = sweep_2x2
    seen = set()
    for job in sorted(p for p in sweep_dir.iterdir() if (p / "tb").is_dir()):
        hparams, status = hparams_session(job / "tb")
        assert status == api_pb2.STATUS_SUCCESS
        seen.add((hparams["model.dense_units"], hparams["optimizer.lr"]))
        metrics = json.loads((job / "metrics.json").read_text())
        assert scalars(job / "tb", "best/val_accuracy") == [pytest.approx(metrics["val_accuracy"])]
    assert seen == {(16, 0.01), (16, 0.001), (32, 0.01), (32, 0.001)}


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    result = run_in_process("-m", *TINY, "trainer.epochs=1", "model.dropout=1.5,0.2", f"hydra.sweep.dir={tmp_path}",
                            cwd=tmp_path)
    assert result.returncode == 1
    assert "1 of 2 jobs failed" in result.stderr and "Traceback" not in result.stderr
    failed, finished = tmp_path / "0", tmp_path / "1"
    assert "model.dropout=1.5" in json.loads((failed / "failed.json").read_text())["error"]
    assert (finished / "model.keras").is_file()
    hparams, status = hparams_session(failed / "tb")
    assert status == api_pb2.STATUS_FAILURE and hparams["model.dropout"] == 1.5


def test_compare_ranks_and_writes_csv(sweep_2x2, tmp_path):
    sweep_dir, _ = sweep_2x2
    csv_path = tmp_path / "runs.csv"
    result = run_cli(str(sweep_dir), "--csv", str(csv_path), module="imgexp.compare", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    assert len(lines) == 5 and {"model.dense_units", "optimizer.lr", "val_accuracy", "status"} <= set(header)
    accuracies = [float(line.split(",")[header.index("val_accuracy")]) for line in lines[1:]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert "model.filters" not in header, "only the keys that differ between runs"


def test_compare_bad_path_is_one_line():
    result = run_cli("/no/such/outputs", module="imgexp.compare", timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "imgexp.compare: error: /no/such/outputs: no such folder"


def test_tensorboard_http_api_lists_every_job_as_a_session(sweep_2x2, tmp_path):
    """Start TensorBoard itself on 127.0.0.1 and ask the hparams plugin for its session groups."""
    sweep_dir, _ = sweep_2x2
    with TensorBoardServer(sweep_dir) as server:
        answer = server.post("session_groups", SESSION_GROUPS, ready=lambda a: len(a.get("sessionGroups", [])) >= 4)
    groups = answer.get("sessionGroups", [])
    assert len(groups) == 4, groups
    for group in groups:
        assert {"model", "optimizer.lr", "model.dense_units"} <= set(group["hparams"])
        tags = {m["name"]["tag"] for m in group["metricValues"]}
        assert {"epoch_accuracy", "best/val_accuracy"} <= tags


def test_the_sweep_declares_its_swept_keys_first_in_tensorboards_hparams_table(sweep_2x2):
    """What the dashboard shows by default: the experiment TensorBoard serves for the sweep folder."""
    sweep_dir, _ = sweep_2x2
    with TensorBoardServer(sweep_dir) as server:
        experiment = server.post("experiment", {"experimentName": ""}, ready=lambda a: bool(a.get("hparamInfos")))
        groups = server.post("session_groups", SESSION_GROUPS,
                             ready=lambda a: len(a.get("sessionGroups", [])) >= 4)["sessionGroups"]
    infos = experiment["hparamInfos"]
    names = [info["name"] for info in infos]
    assert names[:2] == ["model.dense_units", "optimizer.lr"]  # swept: first (TensorBoard orders them by name)
    assert infos[0]["domainDiscrete"] == [16, 32] and infos[1]["domainDiscrete"] == [0.01, 0.001]
    assert infos[0]["differs"] and not any(info.get("differs") for info in infos[2:])
    assert "trainer.epochs" in names and "trainer.verbose" not in names
    metrics = [m.get("displayName") for m in experiment["metricInfos"]]
    assert metrics[:2] == ["val_accuracy", "val_loss"]
    assert sorted(g["name"] for g in groups) == ["0", "1", "2", "3"]  # below the working directory, not absolute
    for group in groups:  # an unset key is an empty cell, never a "None" string
        assert "None" not in group["hparams"].values() and "optimizer.weight_decay" not in group["hparams"]
