"""imgexp.compare: every status a run folder can be in, and a table that fits the terminal."""

import subprocess
import sys

import pytest

from conftest import cli_env
from imgexp.folder_lock import FolderLock
from imgexp.run_folder import find_runs, write_config, write_failure, write_json

LONG_ERROR = "OSError: weights cannot be downloaded\n" + "\n".join(f"  frame {i} of a long traceback" for i in range(30))


def fake_run(path, model: str, lr: float, status: str):
    model_keys = {"name": model, "dropout": 0.5, **({"filters": [8, 16], "dense_units": 32} if model == "cnn" else
                                                   {"weights": "imagenet", "fine_tune_at": 100, "trainable": True})}
    write_config(path, {"dataset": {"name": "digits", "path": None}, "model": model_keys, "optimizer": {"lr": lr}},
                 [f"model={model}", f"optimizer.lr={lr}"], {"model": model})
    (path / "history.csv").write_text("epoch,loss\n0,1.0\n")
    if status in ("finished", "pruned"):
        write_json(path / "metrics.json", {"val_accuracy": lr * 10, "val_loss": 1 - lr, "epochs_run": 3,
                                           "status": status, "seconds": 4.2})
    elif status == "failed":
        write_failure(path, LONG_ERROR)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs") / "multirun" / "2026-12-01" / "10-00-00.123456"
    statuses = ["finished"] * 18 + ["pruned"] * 3 + ["failed"] * 3 + ["interrupted"] * 2
    for i, status in enumerate(statuses):
        fake_run(root / f"{i}", "cnn" if i % 2 else "resnet50", round(0.001 * (i + 1), 4), status)
    return root


def test_each_status_is_read_from_the_folder(outputs):
    with FolderLock(outputs / "25"):  # a process holds it: running
        statuses = {r.path.name: r.status for r in find_runs([outputs])}
    assert statuses["0"] == "finished" and statuses["18"] == "pruned" and statuses["21"] == "failed"
    assert statuses["24"] == "interrupted" and statuses["25"] == "running"


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_fits_the_terminal(outputs, width):
    env = {**cli_env(), "COLUMNS": str(width)}
    result = subprocess.run([sys.executable, "-m", "imgexp.compare", str(outputs)], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    assert len(lines) < 26 + 12, "one line per run, not errors wrapped over dozens of lines"
    assert "frame 3" not in result.stdout
    assert "interrupted" in result.stdout and "failed" in result.stdout
    header = next(line for line in lines if "┃ rank" in line)
    assert "val_accuracy" in header and "status" in header
    if width == 120:
        assert "model.name" in result.stdout and "optimizer.lr" in result.stdout, "the keys that were set come first"
        assert "OSError: weights cannot be downloaded (failed.json)" in result.stdout, "an error: its first line"


def test_columns_choose_and_the_csv_keeps_everything(outputs, tmp_path):
    env = {**cli_env(), "COLUMNS": "200"}
    csv_path = tmp_path / "runs.csv"
    result = subprocess.run([sys.executable, "-m", "imgexp.compare", str(outputs), "--columns", "run,optimizer.lr",
                             "--csv", str(csv_path)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "optimizer.lr" in line)
    assert "val_accuracy" not in header
    assert "frame 29 of a long traceback" in csv_path.read_text()
    wrong = subprocess.run([sys.executable, "-m", "imgexp.compare", str(outputs), "--columns", "nope"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--columns nope: no such column" in wrong.stderr


def test_pareto_keeps_the_runs_no_other_beats_on_accuracy_and_cost(tmp_path):
    # (val_accuracy, latency_ms, model_bytes): b beats a on both; c is the most accurate; d the cheapest;
    # e ties c's accuracy at a higher cost (beaten); f has no cost recorded (a run from before it)
    runs = {"a": (0.80, 5.0, 900), "b": (0.85, 4.0, 800), "c": (0.95, 9.0, 5000), "d": (0.60, 1.0, 100),
            "e": (0.95, 9.5, 5000), "f": (0.99, None, None)}
    for name, (accuracy, latency, size) in runs.items():
        fake_run(tmp_path / name, "cnn", 0.001, "finished")
        metrics = {"val_accuracy": accuracy, "val_loss": 1 - accuracy, "status": "finished"}
        if latency is not None:
            metrics |= {"latency_ms": latency, "model_bytes": size}
        write_json(tmp_path / name / "metrics.json", metrics)
    result = subprocess.run([sys.executable, "-m", "imgexp.compare", str(tmp_path), "--pareto", "latency_ms"],
                            env={**cli_env(), "COLUMNS": "120"}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    shown = [line.split("│")[2].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert shown == ["c", "b", "d"], result.stdout  # ranked by val_accuracy
    assert "3 runs no other run beats on both val_accuracy and latency_ms" in " ".join(result.stdout.split())
    bad = subprocess.run([sys.executable, "-m", "imgexp.compare", str(tmp_path), "--pareto", "flops"],
                         env=cli_env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "invalid choice: 'flops'" in bad.stderr
