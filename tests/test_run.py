"""One run end to end: artifacts, TensorBoard records read back, and a model that takes raw images."""

import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from tensorboard.plugins.hparams import api_pb2

from conftest import TINY, run_cli
from imgexp.job import run_job
from imgexp.compose import compose_config
from imgexp.errors import UserError
from tbread import accumulator, hparams_session, scalars


def train(run_dir, *overrides, tiny=True):
    cfg, choices = compose_config([*(TINY if tiny else ["trainer.verbose=0"]), *overrides])
    return run_job(cfg, run_dir, choices)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("digits_run")
    metrics = train(run_dir, "optimizer.lr=0.003")
    return run_dir, metrics


def test_run_leaves_its_artifacts(digits_run):
    run_dir, metrics = digits_run
    for name in ["model.keras", "labels.json", "metrics.json", "history.csv", "history.png",
                 "confusion_matrix.png", "classification_report.txt"]:
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == metrics
    assert {"val_accuracy", "val_loss", "train_accuracy", "train_loss", "best_epoch", "epochs_run",
            "num_params", "seconds"} <= set(saved)
    assert saved["epochs_run"] == 2 and 1 <= saved["best_epoch"] <= 2
    assert json.loads((run_dir / "labels.json").read_text()) == [str(d) for d in range(10)]
    assert "precision" in (run_dir / "classification_report.txt").read_text()
    assert not (run_dir / "backup").exists() and not (run_dir / "checkpoints").exists()


def test_model_keras_predicts_raw_images_of_any_size(digits_run):
    run_dir, metrics = digits_run
    model = keras.models.load_model(run_dir / "model.keras")  # safe_mode stays on: no custom objects
    raw = np.random.default_rng(0).integers(0, 256, (3, 45, 61, 3), dtype=np.uint8)
    probs = model.predict(raw, verbose=0)
    assert probs.shape == (3, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_saved_model_scores_like_the_run(digits_run):
    """model.keras on the 8x8 digits resized by itself agrees with the run's validation accuracy."""
    from imgexp.data.digits import load_digits_source

    run_dir, metrics = digits_run
    source = load_digits_source(validation_split=0.2, seed=42)
    model = keras.models.load_model(run_dir / "model.keras")
    accuracy = np.mean(model.predict(source.validation.images, verbose=0).argmax(1) == source.validation.labels)
    assert abs(accuracy - metrics["val_accuracy"]) < 0.02


def test_tensorboard_hparams_session_names_config_keys(digits_run):
    run_dir, metrics = digits_run
    hparams, status = hparams_session(run_dir / "tb")
    assert status == api_pb2.STATUS_SUCCESS
    assert hparams["model"] == "cnn" and hparams["dataset"] == "digits" and hparams["optimizer"] == "adam"
    assert hparams["optimizer.lr"] == pytest.approx(0.003)
    assert hparams["dataset.image_size"] == "[16, 16]" and hparams["model.filters"] == "[8, 16]"
    assert hparams["augmentation.rotation"] == 10.0 and "model.name" not in hparams


def test_auto_precision_and_cache_are_recorded_as_resolved(digits_run):
    from imgexp.training.device import device_facts, resolve_precision

    run_dir, metrics = digits_run
    expected = resolve_precision("auto", device_facts())[0]
    assert metrics["precision"] == expected != "auto"
    hparams, _ = hparams_session(run_dir / "tb")
    assert hparams["trainer.precision"] == expected, "the HParams table shows what ran, not auto"
    assert metrics["cache"] == "memory", "cache=auto keeps the 1,797 digits (5.5 MB decoded) in memory"


def test_cache_auto_streams_a_folder_larger_than_its_ram_share(image_folder, tmp_path, caplog, recwarn):
    with caplog.at_level("INFO"):
        metrics = train(tmp_path, "dataset=folder", f"dataset.path={image_folder}", "dataset.cache_ram_share=1e-9",
                        "dataset.image_size=[18,18]", "trainer.epochs=1")
    assert metrics["cache"] == "none" and metrics["epochs_run"] == 1
    assert "streamed from disk every epoch" in caplog.text
    assert not [w for w in recwarn if "ran out of data" in str(w.message)], \
        "a streamed pipeline of unknown length is not a problem to warn about"


def test_tensorboard_scalars_per_epoch_and_final_metrics(digits_run):
    run_dir, metrics = digits_run
    for split in ("train", "validation"):
        assert len(scalars(run_dir / "tb" / split, "epoch_accuracy")) == 2
        assert len(scalars(run_dir / "tb" / split, "epoch_loss")) == 2
    assert scalars(run_dir / "tb", "best/val_accuracy") == [pytest.approx(metrics["val_accuracy"])]
    assert scalars(run_dir / "tb", "best/val_loss") == [pytest.approx(metrics["val_loss"], rel=1e-5)]


def test_tensorboard_images(digits_run):
    run_dir, _ = digits_run
    acc = accumulator(run_dir / "tb")
    for tag in ("augmented_training_samples", "confusion_matrix"):
        (event,) = acc.Tensors(tag)
        width, height = (int(v) for v in event.tensor_proto.string_val[:2])
        assert width > 16 and height > 16  # a grid / a plot, not a single tiny image
        assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "images"  # what TensorBoard's image tab shows
        png = Image.open(io.BytesIO(event.tensor_proto.string_val[2]))
        assert png.size == (width, height) and png.mode in ("RGB", "RGBA")  # matplotlib writes RGBA


def test_finished_run_dir_is_never_overwritten(digits_run):
    run_dir, _ = digits_run
    before = (run_dir / "model.keras").stat().st_mtime_ns
    with pytest.raises(UserError, match="already holds a finished run"):
        train(run_dir)
    result = run_cli(*TINY, f"hydra.run.dir={run_dir}", timeout=120)
    assert result.returncode == 2 and "already holds a finished run" in result.stderr
    assert "Traceback" not in result.stderr
    assert (run_dir / "model.keras").stat().st_mtime_ns == before


def test_folder_dataset_two_classes_sigmoid_head(image_folder, tmp_path):
    metrics = train(tmp_path, "dataset=folder", f"dataset.path={image_folder}", "augmentation=seed",
                    "trainer.epochs=3", "optimizer.lr=0.003")
    assert json.loads((tmp_path / "labels.json").read_text()) == ["horizontal", "vertical"]
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.output_shape == (None, 1)
    assert metrics["val_accuracy"] > 0.5


@pytest.mark.parametrize("optimizer", ["adamw", "sgd", "rmsprop"])
def test_each_optimizer_and_schedule_trains(optimizer, tmp_path):
    metrics = train(tmp_path, f"optimizer={optimizer}", "optimizer.schedule=cosine", "trainer.epochs=1",
                    "dataset.validation_split=0.5")
    assert metrics["epochs_run"] == 1 and np.isfinite(metrics["val_loss"])


def test_mixed_precision_keeps_float32_outputs(tmp_path):
    metrics = train(tmp_path, "trainer.precision=mixed_bfloat16", "trainer.epochs=1")
    assert np.isfinite(metrics["val_loss"])
    assert keras.mixed_precision.global_policy().name == "float32", "the policy is restored after the run"
    model = keras.models.load_model(tmp_path / "model.keras")
    convolutions = [l for l in model._flatten_layers() if isinstance(l, keras.layers.Conv2D)]
    assert convolutions and all(l.dtype_policy.name == "mixed_bfloat16" for l in convolutions), \
        "the network computes in bfloat16"
    assert all(w.dtype == "float32" for w in model.weights), "variables stay float32"
    raw = np.random.default_rng(0).integers(0, 256, (4, 20, 20, 3), dtype=np.uint8)
    probs = model.predict(raw, verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5), \
        "the head's output is float32 probabilities"


def test_two_phase_fine_tune_trains_head_then_backbone(image_folder, tmp_path):
    metrics = train(tmp_path, "model=mobilenetv2", "model.weights=null", "model.fine_tune_at=100",
                    "dataset=folder", f"dataset.path={image_folder}", "dataset.image_size=[32,32]",
                    "trainer.epochs=1", "trainer.fine_tune_epochs=1", tiny=False)
    assert metrics["epochs_run"] == 2  # one head epoch, one fine-tune epoch
    rates = [row.split(",") for row in (tmp_path / "history.csv").read_text().splitlines()]
    lr = [float(r[rates[0].index("learning_rate")]) for r in rates[1:]]
    assert lr[1] == pytest.approx(lr[0] * 0.1), "fine-tuning runs at optimizer.lr * trainer.fine_tune_lr_factor"


def test_session_names_put_the_runs_own_folder_first(tmp_path, monkeypatch):
    from imgexp.tracking.hparams import session_name

    monkeypatch.chdir(tmp_path)
    assert session_name(tmp_path / "outputs/search/random-cnn/trial_3") == "trial_3 (search/random-cnn)"
    assert session_name(tmp_path / "outputs/search/s/trial_3/execution_1") == "trial_3/execution_1 (search/s)"
    assert session_name(Path("/elsewhere/outputs/multirun/2026-11-30/10-00-00/2")) == "2 (multirun/2026-11-30/10-00-00)"
    assert session_name(tmp_path / "runs/a") == "a (runs)"  # below the working directory
    assert session_name(tmp_path / "a") == "a"
    assert session_name(Path("/data/runs/a")) == "a (/data/runs)"
