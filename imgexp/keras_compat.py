"""Every use of Keras beyond its documented surface, in one place (as tuning/kt_compat.py for KerasTuner).

tests/test_keras_compat.py checks each against the installed Keras; pyproject.toml
bounds keras at TESTED_VERSION.
"""

from contextlib import contextmanager

import keras

TESTED_VERSION = "3.15.1"  # the newest Keras these were checked against
SEED_STATE_NAME = "seed_generator_state"  # keras.random.SeedGenerator's variable: [seed, draws so far]


def seed_generator_states(model: keras.Model) -> list:
    """The state variables of every SeedGenerator in `model` (Dropout's, ...), in a stable order.

    `Layer.variables` lists them (documented: "including random seeds") but names
    them only by this variable name; they are not saved with the weights.
    """
    return [v for v in model.variables if v.name == SEED_STATE_NAME]


@contextmanager
def without_training_state(model: keras.Model):
    """`model` seen as not compiled, for saving it for inference: Keras 3's `save` has no
    include_optimizer, and a compiled model's file holds its optimizer's variables (three times the
    weights with Adam) and a compile config that makes every load rebuild an optimizer. `compiled`
    and `optimizer` are the attributes `compile` sets; both are put back afterwards."""
    if not getattr(model, "compiled", False):  # never compiled (a run resumed after its pruning decision)
        yield model
        return
    compiled, optimizer = model.compiled, model.optimizer
    model.compiled, model.optimizer = False, None
    try:
        yield model
    finally:
        model.compiled, model.optimizer = compiled, optimizer


def is_download_failure(err: Exception) -> bool:
    """keras.utils.get_file's bare Exception for a download that failed (no network, a bad URL)."""
    return "fetch failure" in str(err)


def is_unsafe_model_refusal(err: Exception) -> bool:
    """keras.models.load_model's ValueError for a file with code that would run on loading (safe_mode)."""
    return isinstance(err, ValueError) and "safe_mode" in str(err)
