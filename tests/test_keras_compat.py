"""Each use of Keras beyond its public API (imgexp/keras_compat.py), checked against the installed Keras."""

import keras
import numpy as np

from imgexp import keras_compat
from imgexp.training.reproducible import EpochDraws


def model(dropout: bool) -> keras.Model:
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3)(inputs)
    if dropout:
        x = keras.layers.Dropout(0.5)(x)
        x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def test_seed_generator_states_are_found_by_their_name():
    assert len(keras_compat.seed_generator_states(model(dropout=True))) == 2
    assert keras_compat.seed_generator_states(model(dropout=False)) == []


def test_setting_the_states_fixes_what_dropout_draws():
    net = model(dropout=True)
    draws = EpochDraws(seed=3)
    draws.set_model(net)
    x = np.ones((2, 4), np.float32)
    draws.on_epoch_begin(5)
    first = np.asarray(net(x, training=True))
    np.asarray(net(x, training=True))  # moves the generators on
    draws.on_epoch_begin(5)
    assert np.array_equal(np.asarray(net(x, training=True)), first)
    draws.on_epoch_begin(6)
    assert not np.array_equal(np.asarray(net(x, training=True)), first)


def test_pyproject_bounds_keras_at_the_tested_version():
    from pathlib import Path

    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'"keras>=3.14,<={keras_compat.TESTED_VERSION}"' in pyproject
    assert keras.__version__ == keras_compat.TESTED_VERSION or keras.__version__ < keras_compat.TESTED_VERSION


def test_a_model_saved_without_its_training_state_loads_quietly_and_trains_on(tmp_path):
    """Fails when a Keras release saves the optimizer some other way, or `compile` sets other attributes."""
    import warnings
    import zipfile

    import h5py

    from imgexp.models.serving import with_raw_image_input
    from imgexp.keras_compat import without_training_state

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).random((8, 8, 8, 3)), np.zeros(8)
    model.fit(x, y, verbose=0)
    served = with_raw_image_input(model, (8, 8))
    served.save(tmp_path / "trained.keras")
    with without_training_state(model):
        served.save(tmp_path / "inference.keras")

    def saved_groups(path):
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as weights, h5py.File(weights) as h5:
            names = []
            h5.visit(names.append)
            return names

    assert any(n.endswith("/optimizer") for n in saved_groups(tmp_path / "trained.keras")), "the premise: Keras saves it"
    assert not any("optimizer" in n for n in saved_groups(tmp_path / "inference.keras"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Skipping variable loading for optimizer" would be raised here
        loaded = keras.models.load_model(tmp_path / "inference.keras")
    np.testing.assert_array_equal(loaded.predict(x * 255, verbose=0), served.predict(x * 255, verbose=0))
    assert model.compiled and model.optimizer is not None and model.optimizer.iterations.numpy() == 1
    model.fit(x, y, verbose=0)  # the run's model trains on as it was
    assert model.optimizer.iterations.numpy() == 2


def test_a_failed_download_is_recognised_by_its_keras_text(tmp_path):
    try:
        keras.utils.get_file("weights.h5", "http://127.0.0.1:9/weights.h5", cache_dir=str(tmp_path))
    except Exception as err:  # a bare Exception: the text is all there is to go by
        assert keras_compat.is_download_failure(err), str(err)
    else:
        raise AssertionError("nothing listens on port 9: the download must fail")
    assert not keras_compat.is_download_failure(ValueError("input too small"))


def test_a_model_with_code_is_recognised_by_keras_refusal(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    try:
        keras.models.load_model(tmp_path / "lambda.keras")
    except ValueError as err:
        assert keras_compat.is_unsafe_model_refusal(err), str(err)
    else:
        raise AssertionError("safe_mode must refuse a Lambda layer")
    assert not keras_compat.is_unsafe_model_refusal(ValueError("a wrong shape"))
