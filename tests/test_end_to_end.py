"""Whole commands in real processes: the default run, every model, the tutorial recipe, resume after a kill."""

import json
import signal
import subprocess

import pytest

from imgexp.models import BUILDERS

from conftest import TINY, cli_command, cli_env, run_cli, wait_for


def read_metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_default_run_reaches_95_percent_on_digits(tmp_path):
    result = run_cli(f"hydra.run.dir={tmp_path}", "trainer.verbose=0", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path)
    assert metrics["val_accuracy"] >= 0.95, metrics
    print(f"default run: {metrics}")


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(BUILDERS))
def test_every_model_trains_offline_from_the_cli(model, image_folder, tmp_path):
    # Small generated images keep this to seconds; the 32x32 default suits every backbone
    # (InceptionV3 resizes up to its 75x75 minimum inside the model).
    result = run_cli(f"model={model}", "trainer.epochs=1", "model.weights=null", "dataset=folder",
                     f"dataset.path={image_folder}", "dataset.image_size=[32,32]", "trainer.verbose=0",
                     f"hydra.run.dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_metrics(tmp_path)["epochs_run"] == 1
    import keras
    import numpy as np

    saved = keras.models.load_model(tmp_path / "model.keras")  # safe_mode: no Lambda, no custom objects
    assert saved.predict(np.full((1, 50, 40, 3), 128.0, np.float32), verbose=0).shape == (1, 1), "raw images in"


@pytest.mark.slow
def test_seed_tutorial_experiment_builds_the_tutorial_model(image_folder, tmp_path):
    result = run_cli("experiment=seed_tutorial", f"dataset.path={image_folder}", "trainer.epochs=1",
                     "trainer.verbose=0", f"hydra.run.dir={tmp_path}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = read_metrics(tmp_path)
    assert metrics["num_params"] == 19_034_177 and metrics["epochs_run"] == 1
    saved = (tmp_path / ".hydra" / "config.yaml").read_text()
    assert "rotation: 40.0" in saved and "- 150" in saved


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY, "trainer.epochs=30", "trainer.early_stopping_patience=0", "trainer.verbose=2",
            f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen(cli_command(*args), env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history.csv"
    wait_for(lambda: history.exists() and len(history.read_text().splitlines()) >= 4,  # header + 3 epochs
             300, every=0.05, process=first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    done_before = len(history.read_text().splitlines()) - 1
    assert 3 <= done_before < 30, "killed mid-run"
    assert not (run_dir / "model.keras").exists()

    second = run_cli(*args, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming the interrupted run" in second.stderr + second.stdout
    epochs_trained_again = (second.stdout + second.stderr).count("Epoch ")
    assert epochs_trained_again <= 30 - done_before + 1, "continued, not restarted"
    assert read_metrics(run_dir)["epochs_run"] == 30
