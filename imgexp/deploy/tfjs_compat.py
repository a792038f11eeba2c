"""The TensorFlow.js converter (the `tensorflowjs` package), imported beside a current TensorFlow.

tensorflowjs 4.22 declares tensorflow-decision-forests, and every TF-DF release pins one exact
TensorFlow (the newest, 1.12, pins 2.19): pip then downgrades TensorFlow or falls back to
tensorflowjs 3.18. So it is installed with `--no-deps` (INSTALL), and its converter's module-level
imports of two packages the SavedModel path never uses are met here:

- `tensorflow_decision_forests` only registers TF-DF's ops, for models holding decision forests
  (imgexp's hold none); an empty module stands in when the real one is missing or does not load;
- `tensorflowjs.converters.jax_conversion` imports jax (hundreds of MB) for JAX models; a module
  whose `convert_jax` refuses stands in when jax is missing.

Both stand-ins are checked by tests/test_deploy.py against the version below.
"""

import importlib
import importlib.metadata
import sys
import types

from imgexp.errors import UserError

TESTED_VERSION = "4.22.0"
INSTALL = f'pip install "imgexp[deploy]" && pip install --no-deps tensorflowjs=={TESTED_VERSION}'
STAND_INS = ("tensorflow_decision_forests", "tensorflowjs.converters.jax_conversion")


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("tensorflowjs")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_installed() -> None:
    """One line naming the install command when the converter or what it imports is missing."""
    version = installed_version()
    if version is None:
        raise UserError(f"--format tfjs needs the TensorFlow.js converter; install it with: {INSTALL}")
    if version != TESTED_VERSION:
        raise UserError(f"tensorflowjs {version} is installed; imgexp's TF.js export is checked against "
                        f"{TESTED_VERSION}: {INSTALL}")
    for module, package in (("tf_keras", "tf-keras"), ("tensorflow_hub", "tensorflow-hub")):
        if importlib.util.find_spec(module) is None:
            raise UserError(f"--format tfjs: the TensorFlow.js converter imports {package}, which is missing; "
                            f"install it with: {INSTALL}")


def stand_in_for_decision_forests() -> None:
    if "tensorflow_decision_forests" in sys.modules:
        return
    try:
        importlib.import_module("tensorflow_decision_forests")
    except Exception:  # missing, or built for another TensorFlow (its ops library fails to load)
        sys.modules["tensorflow_decision_forests"] = types.ModuleType("tensorflow_decision_forests")


def stand_in_for_jax_conversion() -> None:
    if importlib.util.find_spec("jax") is not None or STAND_INS[1] in sys.modules:
        return

    def convert_jax(*args, **kwargs):
        raise RuntimeError("converting a JAX function to TF.js needs jax, which is not installed")

    module = types.ModuleType(STAND_INS[1])
    module.convert_jax = convert_jax
    sys.modules[STAND_INS[1]] = module  # found by `tensorflowjs.converters/__init__`'s import


def saved_model_converter():
    """tensorflowjs' `convert_tf_saved_model(saved_model_dir, output_dir, signature_def=..., ...)`."""
    check_installed()
    stand_in_for_decision_forests()
    stand_in_for_jax_conversion()
    from tensorflowjs.converters import tf_saved_model_conversion_v2

    return tf_saved_model_conversion_v2.convert_tf_saved_model
