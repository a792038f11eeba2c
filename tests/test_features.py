"""Frozen-backbone features computed once (training/features.py): exact, shared, keyed, safe to kill."""

import csv
import json

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import run_in_process, search_args, trial_dirs
from imgexp.compose import compose_config
from imgexp.job import run_job
from imgexp.models.identity import weights_key
from imgexp.run_context import RunContext
from imgexp.run_folder import write_config
from imgexp.training import features

FROZEN = ["model=mobilenetv2", "model.weights=null", "model.trainable=false", "augmentation=none",
          "dataset.image_size=[32,32]", "trainer.epochs=2", "trainer.verbose=0", "model.dropout=0.5",
          "optimizer.lr=0.01"]


@pytest.fixture
def passes(monkeypatch):
    """The frozen part's passes over a split (features.compute calls), counted as they happen."""
    count = []
    compute = features.compute
    monkeypatch.setattr(features, "compute", lambda *args: count.append(1) or compute(*args))
    return count


def trained(tmp_path, name, *overrides):
    run_dir = tmp_path / name
    run_dir.mkdir()
    cfg, choices = compose_config([*FROZEN, *overrides])
    write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
    run_job(cfg, run_dir, choices)
    return run_dir


def head_weights(run_dir):
    model = keras.models.load_model(run_dir / "model.keras")
    return model.layers[-1].get_layer(index=-1).get_weights()  # the classifier's Dense head


@pytest.mark.parametrize("sizes", [[], ["dataset.image_size=[16,16]", "model.input_size=[32,32]"]],
                         ids=["at_image_size", "under_input_size"])
def test_stored_features_train_the_head_the_backbone_would(tmp_path, sizes, passes, standin_mobilenetv2):
    weights = f"model.weights={standin_mobilenetv2}"  # features that differ from image to image
    stored = trained(tmp_path, "stored", *sizes, weights)
    assert len(passes) == 2, "train and validation features, once each"
    images = trained(tmp_path, "images", *sizes, weights, "trainer.feature_cache=off")
    assert len(passes) == 2, "feature_cache=off runs the backbone on the images"
    for a, b in zip(head_weights(stored), head_weights(images)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (stored, images))
    assert got["val_accuracy"] == want["val_accuracy"]  # model.keras, evaluated on images, in both
    assert got["val_loss"] == pytest.approx(want["val_loss"], abs=1e-5)
    # Dropout(0.5) drops on stored features as on images: the training losses match epoch by epoch.
    losses = [[float(row["loss"]) for row in csv.DictReader((d / "history.csv").open())] for d in (stored, images)]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)  # bfloat16 here: its rounding drifts a little


def test_a_search_computes_the_features_once_for_all_its_trials(tmp_path, passes):
    args = [a for a in search_args(tmp_path, {"optimizer.lr": [0.01, 0.003, 0.001]}) if not a.startswith("model.")]
    result = run_in_process(*args, *FROZEN, "trainer.epochs=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    search = tmp_path / "search" / "grid-test"
    assert len(trial_dirs(search)) == 3
    assert len(passes) == 2, "3 trials, one pass over train and one over validation"
    [stored] = (search / features.FEATURES_DIR).iterdir()
    assert {p.name for p in stored.iterdir()} == {"train.npy", "validation.npy"}


def test_stored_features_on_disk_are_reused_and_a_damaged_file_is_computed_again(tmp_path, passes, caplog):
    """What a worker finds in the search folder; a file cut short (a disk error, a copy) is never trusted."""
    cohort = tmp_path / "search"
    cfg, choices = compose_config(FROZEN)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        write_config(tmp_path / name, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
    run_job(cfg, tmp_path / "a", choices, RunContext(cohort=cohort))
    [folder] = (cohort / features.FEATURES_DIR).iterdir()
    validation = folder / "validation.npy"
    validation.write_bytes(validation.read_bytes()[:100])
    run_job(cfg, tmp_path / "b", choices, RunContext(cohort=cohort))  # another process: only the disk is shared
    assert len(passes) == 4, "the damaged features are computed again"
    assert "cannot be read" in caplog.text
    assert np.load(validation).shape[0] == 360, "written again, whole"
    features_now = features.read_stored(folder)
    assert features_now is not None and features_now[0].shape == (1437, 1280)


def test_features_of_other_weights_or_data_are_never_reused(tmp_path, passes):
    model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    key = features.feature_key(weights_key(model), (32, 32), "digits")
    assert features.feature_key(weights_key(model), (32, 32), "digits") == key
    assert features.feature_key(weights_key(model), (16, 16), "digits") != key
    assert features.feature_key(weights_key(model), (32, 32), "folder photos/") != key
    model.layers[1].kernel.assign(model.layers[1].kernel * 2)
    assert features.feature_key(weights_key(model), (32, 32), "digits") != key, "other weights: another backbone"
    cache = RunContext().cache  # one owner for both runs: what it holds must not be reused
    for seed in (1, 2):  # weights=null: another random backbone
        run_dir = tmp_path / f"seed{seed}"
        run_dir.mkdir()
        cfg, choices = compose_config([*FROZEN, f"trainer.seed={seed}", "trainer.epochs=1"])
        write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), [], choices)
        run_job(cfg, run_dir, choices, RunContext(cache=cache))
    assert len(passes) == 4


def test_an_augmented_run_says_once_why_it_runs_the_backbone_on_every_image(tmp_path, caplog, passes):
    trained(tmp_path, "augmented", "augmentation=seed", "trainer.epochs=1")
    assert not passes
    said = [r.getMessage() for r in caplog.records if "trainer.feature_cache" in r.getMessage()]
    assert len(said) == 1 and "augmentation=seed draws every image anew each epoch" in said[0]
