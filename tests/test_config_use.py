"""The rule: a key set but not read by the run is refused in one line (a sweep's job says so in its log).

Tested over the table of keys that only some options read (imgexp.config_use.READERS), not case by case."""

import logging
from enum import Enum

import pytest
from omegaconf import OmegaConf

from imgexp.compose import compose_config
from imgexp.config_use import ALWAYS_READ, READERS, option_overrides, schema_keys, unread_settings, value_at
from imgexp.job import check_unread, to_config
from imgexp.errors import UserError


def another_value(value):
    """A value of the same type that differs from `value` (the default)."""
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, Enum):
        return next(m.value for m in type(value) if m != value)
    if isinstance(value, int):
        return str(value + 1)
    if isinstance(value, float):
        return str(value / 2 if value else 0.5)
    return "elsewhere"


NULL_DEFAULTS = {"tuner.num_initial_points": "3", "search.name": "mine", "dataset.file_column": "img",
                 "dataset.label_column": "y"}  # keys whose default is null


def setting(entry, base_overrides, tmp_path) -> str:
    """`key=value` with a value other than what the options give."""
    if entry.key in ("dataset.path", "dataset.images", "dataset.data_dir"):
        return f"{entry.key}={tmp_path}"
    if entry.key in NULL_DEFAULTS:
        return f"{entry.key}={NULL_DEFAULTS[entry.key]}"
    cfg, _ = compose_config(list(base_overrides))
    return f"{entry.key}={another_value(OmegaConf.select(cfg, entry.key))}"


@pytest.mark.parametrize("entry", READERS, ids=[r.key for r in READERS])
def test_a_key_set_where_it_is_not_read_is_refused_and_accepted_where_it_is(entry, tmp_path):
    for overrides, read in ((entry.on, True), (entry.off, False)):
        base = list(overrides)
        if "dataset=folder" in base:
            base.append(f"dataset.path={tmp_path}")
        if "dataset=csv" in base and entry.key != "dataset.path":
            (tmp_path / "labels.csv").write_text("filename,label\n")
            base.append(f"dataset.path={tmp_path / 'labels.csv'}")
        key_set = setting(entry, base, tmp_path)
        cfg, choices = compose_config([*base, key_set])
        config = to_config(cfg) if "dataset=folder" not in base else OmegaConf.to_object(cfg)
        found = unread_settings(config, compose_config(option_overrides(choices))[0])
        if read:
            assert not found, (entry.key, base)
        else:
            assert len(found) == 1 and found[0].startswith(f"{entry.key}=") and entry.reader in found[0], found
            with pytest.raises(UserError, match=entry.key.replace(".", r"\.")):
                check_unread(config, choices, strict=True)


def test_every_schema_key_is_classified():
    listed = {r.key for r in READERS}
    for group, keys in schema_keys().items():
        for key in keys:
            assert f"{group}.{key}" in listed or key in ALWAYS_READ.get(group, set()), \
                f"{group}.{key}: say in imgexp/config_use.py which options read it"


def test_a_job_of_a_sweep_says_so_in_its_log_instead(caplog):
    cfg, choices = compose_config(["optimizer=adam", "optimizer.momentum=0.9"])
    with caplog.at_level(logging.WARNING):
        check_unread(to_config(cfg), choices, strict=False)
    assert "optimizer.momentum=0.9 is not read by this run" in caplog.text and "this job ignores it" in caplog.text


def test_options_that_set_the_key_themselves_are_not_a_setting():
    """hyperband.yaml must not set tuner.max_trials, an option's own YAML is not the user's setting."""
    for option in ("random", "hyperband", "bayesian", "grid"):
        cfg, choices = compose_config([f"tuner={option}", "search_space=cnn"])
        assert not unread_settings(OmegaConf.to_object(cfg), compose_config(option_overrides(choices))[0]), option
        assert value_at(OmegaConf.to_object(cfg), "tuner.max_trials") == 10
