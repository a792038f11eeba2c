"""Hydra multirun: every job a normal run, failures recorded, one ranked table, one TensorBoard table."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import TINY, run_cli, run_in_process
from tbread import hparams_session, scalars
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
    assert "4 jobs in" in result.stdout and "ranked by val_accuracy" in result.stdout


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensorboard_http_api_lists_every_job_as_a_session(sweep_2x2, tmp_path):
    """Start TensorBoard itself on 127.0.0.1 and ask the hparams plugin for its session groups."""
    sweep_dir, _ = sweep_2x2
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen([str(tensorboard), "--logdir", str(sweep_dir), "--host", "127.0.0.1",
                               "--port", str(port), "--load_fast", "false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        request = json.dumps({"experimentName": "", "startIndex": 0, "sliceSize": 100,
                              "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING", "STATUS_UNKNOWN"],
                              "colParams": []}).encode()
        deadline, groups = time.monotonic() + 90, []
        while time.monotonic() < deadline and len(groups) < 4:
            time.sleep(1)
            try:
                with urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups", data=request,
                        headers={"Content-Type": "application/json"}), timeout=10) as response:
                    groups = json.loads(response.read()).get("sessionGroups", [])
            except OSError:
                continue
        assert len(groups) == 4, groups
        for group in groups:
            assert {"model", "optimizer.lr", "model.dense_units"} <= set(group["hparams"])
            tags = {m["name"]["tag"] for m in group["metricValues"]}
            assert {"epoch_accuracy", "best/val_accuracy"} <= tags
    finally:
        server.terminate()
        server.wait(timeout=30)
