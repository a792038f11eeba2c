"""Each use of Hydra and OmegaConf beyond their documented API (imgexp/hydra_compat.py), against the installed ones."""

from pathlib import Path

import hydra
import omegaconf
import pytest
from omegaconf import OmegaConf
from packaging.version import Version

from conftest import run_cli
from imgexp import hydra_compat
from imgexp.compose import compose_config
from imgexp.job import to_config


def test_overrides_parse_as_on_the_command_line():
    plain, add, delete, sweep, package = hydra_compat.parse_overrides(
        ["model.filters=[8,16]", "+extra=1", "~model.l1", "optimizer.lr=0.1,0.01", "model@x=cnn"])
    assert plain.key_or_group == "model.filters" and plain.value() == [8, 16]
    assert hydra_compat.is_plain_value(plain)
    assert not any(hydra_compat.is_plain_value(o) for o in (add, delete, sweep, package))
    interval = hydra_compat.parse_overrides(["optimizer.lr=interval(1e-4,1e-2)"])[0]
    assert isinstance(interval.value(), hydra_compat.IntervalSweep)


def omegaconf_message(overrides, key=None):
    """The text of the OmegaConf error a composed config raises when validated, or when `key` is read (as
    app.describe_config_error reads it)."""
    try:
        cfg = compose_config(overrides)[0]
        OmegaConf.select(cfg, key, throw_on_missing=True) if key else to_config(cfg)
    except Exception as err:
        cause = err.__cause__ if isinstance(err.__cause__, omegaconf.errors.OmegaConfBaseException) else err
        return getattr(cause, "msg", None) or str(cause)
    raise AssertionError(f"{overrides} composed without an error")


@pytest.mark.parametrize("overrides, key, check", [
    (["model.dropuot=0.1"], None, hydra_compat.is_unknown_key),
    (["dataset.image_size=32"], None, hydra_compat.is_not_a_list),
    (["dataset=tfds"], "dataset.name", hydra_compat.is_missing_value),
])
def test_omegaconf_errors_are_recognised_by_their_text(overrides, key, check):
    message = omegaconf_message(overrides, key)
    assert check(message), message
    others = [c for c in (hydra_compat.is_unknown_key, hydra_compat.is_not_a_list, hydra_compat.is_missing_value)
              if c is not check]
    assert not any(c(message) for c in others), message


def test_conflicting_flags_are_recognised_by_hydras_text(tmp_path):
    result = run_cli("-m", "--cfg", "job", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "give one of them per command" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_pyproject_bounds_hydra_and_omegaconf_at_the_tested_versions():
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'"hydra-core>=1.3.2,<={hydra_compat.TESTED_HYDRA}"' in pyproject
    assert f'"omegaconf>=2.3,<={hydra_compat.TESTED_OMEGACONF}"' in pyproject
    assert Version(hydra.__version__) <= Version(hydra_compat.TESTED_HYDRA)
    assert Version(omegaconf.__version__) <= Version(hydra_compat.TESTED_OMEGACONF)
