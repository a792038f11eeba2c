"""Each use of Keras beyond its public API (imgexp/training/keras_compat.py), checked against the installed Keras."""

import keras
import numpy as np

from imgexp.training import keras_compat
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
