"""imgexp/deploy/tfjs_compat.py: the TF.js converter imported beside this TensorFlow, each stand-in checked."""

import subprocess
import sys

import pytest

from conftest import cli_env
from imgexp.deploy import tfjs_compat
from imgexp.errors import UserError

IMPORTS = """
import importlib.util, sys
from imgexp.deploy.tfjs_compat import saved_model_converter
convert = saved_model_converter()
print("convert", convert.__module__, convert.__name__)
tfdf = sys.modules["tensorflow_decision_forests"]
print("tfdf", "stand-in" if getattr(tfdf, "__file__", None) is None else "real")
jax = sys.modules["tensorflowjs.converters.jax_conversion"]
print("jax", "stand-in" if getattr(jax, "__file__", None) is None else "real")
print("have-jax", importlib.util.find_spec("jax") is not None)
"""


@pytest.mark.skipif(tfjs_compat.installed_version() is None, reason=f"needs tensorflowjs: {tfjs_compat.INSTALL}")
def test_the_converter_imports_with_its_stand_ins():
    """Fails loudly when a tensorflowjs release imports something else at module level, or moves its converter."""
    result = subprocess.run([sys.executable, "-c", IMPORTS], env=cli_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert found["convert"] == "tensorflowjs.converters.tf_saved_model_conversion_v2 convert_tf_saved_model"
    assert found["tfdf"] in ("stand-in", "real")
    assert found["jax"] == ("real" if found["have-jax"] == "True" else "stand-in")
    assert tfjs_compat.installed_version() == tfjs_compat.TESTED_VERSION


def test_the_jax_stand_in_refuses_to_convert_jax(monkeypatch):
    monkeypatch.delitem(sys.modules, tfjs_compat.STAND_INS[1], raising=False)
    monkeypatch.setattr(tfjs_compat.importlib.util, "find_spec", lambda name: None)
    try:
        tfjs_compat.stand_in_for_jax_conversion()
        with pytest.raises(RuntimeError, match="needs jax"):
            sys.modules[tfjs_compat.STAND_INS[1]].convert_jax()
    finally:
        sys.modules.pop(tfjs_compat.STAND_INS[1], None)


@pytest.mark.parametrize("version, message", [
    (None, "--format tfjs needs the TensorFlow.js converter; install it with: pip install"),
    ("3.18.0", "tensorflowjs 3.18.0 is installed; imgexp's TF.js export is checked against 4.22.0"),
])
def test_a_missing_or_other_converter_is_one_line_with_the_install_command(monkeypatch, version, message):
    monkeypatch.setattr(tfjs_compat, "installed_version", lambda: version)
    with pytest.raises(UserError, match="pip install --no-deps tensorflowjs==4.22.0") as raised:
        tfjs_compat.check_installed()
    assert message in str(raised.value) and "\n" not in str(raised.value)
