"""Checks before training, through the CLI: images shared across splits (warn, error, drop_from_eval),
per-class counts and the small-class warning, class weights, balanced accuracy, and a deterministic
command that gives the same metrics twice."""

import csv
import json
import shutil

import numpy as np
import pytest

from conftest import TINY, error_lines, run_cli, run_in_process, write_class_folders
from imgexp.tracking.plots import read_confusion_counts


@pytest.fixture
def leaky_folder(tmp_path):
    """train/, validation/ and test/, with 2 train images copied into validation/ and 1 validation image
    into test/ under other names: the same content in two splits."""
    root = tmp_path / "data"
    write_class_folders(root / "train", ["a", "b"], per_class=10, seed=1)
    write_class_folders(root / "validation", ["a", "b"], per_class=4, seed=2)
    write_class_folders(root / "test", ["a", "b"], per_class=4, seed=3)
    shutil.copy(root / "train/a/003.jpg", root / "validation/a/copy-of-train-003.jpg")
    shutil.copy(root / "train/b/007.jpg", root / "validation/b/copy-of-train-007.jpg")
    shutil.copy(root / "validation/b/001.jpg", root / "test/b/copy-of-validation-001.jpg")
    return root


def run(tmp_path, name, *overrides):
    return run_in_process(*TINY, "trainer.epochs=1", f"hydra.run.dir={tmp_path / name}", *overrides, cwd=tmp_path)


def log_of_run(tmp_path, name, *overrides) -> str:
    """What a run that must succeed printed."""
    result = run(tmp_path, name, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_duplicates_across_splits_are_named_by_default(leaky_folder, tmp_path):
    log = log_of_run(tmp_path, "run", "dataset=folder", f"dataset.path={leaky_folder}", "dataset.image_size=[16,16]")
    assert "2 validation and 1 test image(s) also appear in an earlier split" in log, log
    assert "validation:validation/a/copy-of-train-003.jpg = train:train/a/003.jpg" in log
    assert "test:test/b/copy-of-validation-001.jpg = validation:validation/b/001.jpg" in log
    data = json.loads((tmp_path / "run/provenance.json").read_text())["data"]["splits"]
    assert data["validation"]["images"] == 10  # warn keeps them


def test_on_duplicate_error_stops_before_training_in_one_line(leaky_folder, tmp_path):
    result = run_cli(*TINY, "dataset=folder", f"dataset.path={leaky_folder}", "dataset.on_duplicate=error",
                     f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "dataset.on_duplicate=drop_from_eval" in errors[0], result.stderr
    assert "copy-of-train-003.jpg" in errors[0]
    assert not (tmp_path / "run/model.keras").exists() and not (tmp_path / "run/history.csv").exists()


def test_drop_from_eval_leaves_the_copies_out_of_validation_and_test(leaky_folder, tmp_path):
    result = run(tmp_path, "run", "dataset=folder", f"dataset.path={leaky_folder}", "dataset.on_duplicate=drop_from_eval")
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "run/split.csv").open() as f:
        rows = list(csv.DictReader(f))
    evaluated = {r["image"] for r in rows if r["split"] != "train"}
    assert len(evaluated) == 8 + 8 and not any("copy-of" in name for name in evaluated)
    assert sum(r["split"] == "train" for r in rows) == 20
    confusion = read_confusion_counts(tmp_path / "run/confusion_matrix.csv")
    assert confusion.sum() == 8  # validation without its 2 copies
    evaluation = run_cli(str(tmp_path / "run"), "--split", "test", module="imgexp.evaluate", timeout=300)
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    assert json.loads((tmp_path / "run/evaluation/test/metrics.json").read_text())["images"] == 8


def test_class_counts_are_logged_and_a_small_class_is_warned_about(tmp_path):
    root = tmp_path / "data"
    write_class_folders(root / "train", ["big", "other"], per_class=30, seed=1)
    write_class_folders(root / "train", ["tiny"], per_class=2, seed=2)
    log = log_of_run(tmp_path, "run", "dataset=folder", f"dataset.path={root}", "dataset.validation_split=0.2")
    assert "train: 49 images; per class: big 24, other 24, tiny 1" in log, log
    assert "smaller than 10% of the largest (big, 24 images): tiny 1" in log
    assert "trainer.class_weight=balanced" in log
    quiet = run(tmp_path, "quiet", "dataset=folder", f"dataset.path={root}", "dataset.small_class_share=0")
    assert "smaller than" not in quiet.stdout + quiet.stderr


def confusion_balanced_accuracy(run_dir) -> float:
    matrix = read_confusion_counts(run_dir / "confusion_matrix.csv")
    present = matrix.sum(axis=1) > 0
    return float(np.mean(np.diag(matrix)[present] / matrix.sum(axis=1)[present]))


def test_balanced_accuracy_is_the_mean_recall_of_the_confusion_matrix(tmp_path):
    result = run(tmp_path, "run")  # the digits
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["val_balanced_accuracy"] == pytest.approx(confusion_balanced_accuracy(tmp_path / "run"))
    compared = run_cli(str(tmp_path / "run"), module="imgexp.compare", timeout=60)
    assert compared.returncode == 0 and "val_balanced_accuracy" in compared.stdout.replace("\n", ""), compared.stdout


@pytest.mark.slow
def test_deterministic_runs_repeat_exactly_and_class_weights_change_the_loss(tmp_path):
    """Three fresh processes: the same deterministic command twice gives identical metrics; with
    trainer.class_weight=balanced on an imbalanced folder the training loss differs."""
    root = tmp_path / "data"
    write_class_folders(root / "train", ["many"], per_class=30, seed=1)
    write_class_folders(root / "train", ["few"], per_class=8, seed=2)
    common = [*TINY, "dataset=folder", f"dataset.path={root}", "dataset.image_size=[16,16]",
              "trainer.deterministic=true"]
    for name, extra in (("one", []), ("two", []), ("weighted", ["trainer.class_weight=balanced"])):
        result = run_cli(*common, *extra, f"hydra.run.dir={tmp_path / name}", timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    one, two, weighted = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two", "weighted"))
    timing = {"seconds", "fit_seconds", "phase_seconds", "latency_ms"}  # wall times
    assert {k: v for k, v in one.items() if k not in timing} == {k: v for k, v in two.items() if k not in timing}
    losses = [[row["loss"] for row in csv.DictReader((tmp_path / n / "history.csv").open())] for n in ("one", "weighted")]
    assert losses[0] != losses[1]
    # 30 training images after the 20% validation split: few (class 0) 6, many (class 1) 24
    assert "class weights (trainer.class_weight=balanced): 0 2.5, 1 0.625" in result.stdout + result.stderr
