"""Search spaces in YAML: parsed, checked against the real configs, turned into overrides."""

import pytest
from omegaconf import OmegaConf

from conftest import TINY
from imgexp.compose import compose_config
from imgexp.errors import UserError
from imgexp.tuning.space import SearchSpace


def compose(overrides):
    return compose_config(overrides)[0]


def space(spec, base=()):
    return SearchSpace.from_config(spec, compose, list(base))


def test_shipped_spaces_are_valid():
    for name in ("cnn", "transfer"):
        cfg, _ = compose_config(["tuner=random", f"search_space={name}"])
        parsed = space(OmegaConf.to_container(cfg.search_space))
        assert parsed.hyperparameters().space, name


def test_kinds_and_overrides():
    s = space({"optimizer.lr": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
               "model.dense_units": {"min": 32, "max": 128, "step": 32},
               "model.filters": [[8, 16], [16, 32]],
               "trainer.deterministic": "bool",
               "augmentation": ["none", "basic"]}, TINY)
    hp = s.hyperparameters()
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"optimizer.lr": "Float", "model.dense_units": "Int", "model.filters": "Choice",
                     "trainer.deterministic": "Boolean", "augmentation": "Choice"}
    overrides = s.overrides({"optimizer.lr": 0.001, "model.filters": "[8, 16]", "trainer.deterministic": True,
                             "augmentation": "none", "tuner/epochs": 3})
    assert overrides == ["optimizer.lr=0.001", "model.filters=[8,16]", "trainer.deterministic=true", "augmentation=none"]
    compose([*TINY, *overrides])  # Hydra takes them as they are


def test_yaml_1e_minus_4_text_is_read_as_a_number():
    s = space({"optimizer.lr": {"min": "1e-4", "max": "1e-2", "sampling": "log"}})
    assert s.params[0].low == pytest.approx(1e-4)


def test_int_range_on_a_float_key_samples_floats():
    s = space({"model.dropout": {"min": 0, "max": 1}})
    assert s.params[0].kind == "float"


def test_group_leaf_keys_apply_only_to_options_that_have_them():
    s = space({"model": ["cnn", "mobilenetv2"], "model.dense_units": [64, 128], "model.fine_tune_at": [0, 10]})
    only = {p.key: p.only_for for p in s.params}
    assert only["model.dense_units"] == ("model", ("cnn",))
    assert only["model.fine_tune_at"] == ("model", ("mobilenetv2",))
    hp = s.hyperparameters()
    hp.values["model"] = "mobilenetv2"
    assert not hp.is_active(hp._hps["model.dense_units"][0]) and hp.is_active(hp._hps["model.fine_tune_at"][0])


@pytest.mark.parametrize("spec, message", [
    ({"optimizer.lrr": [0.1]}, "optimizer.lrr is not a config key"),
    ({"optimizer.lr": {"min": 0.1, "max": 0.01}}, "min 0.1 is greater than max 0.01"),
    ({"model.dense_units": []}, "empty choice"),
    ({"model.dense_units": ["big", "small"]}, "'big' is not of the key's type"),
    ({"model": ["cnn", "vgg99"]}, "model: 'vgg99'"),
    ({"model": {"min": 1, "max": 2}}, "is a config group"),
    ({"optimizer.lr": {"min": -1, "max": 1, "sampling": "log"}}, "log sampling needs min > 0"),
    ({"optimizer.lr": {"low": 1, "high": 2}}, "a range is {min, max}"),
    ({"model.dropout": "maybe"}, "give a list of values"),
    ({"model.dense_units": [1, "a"]}, "mixed types"),
    ({}, "search_space is empty"),
])
def test_invalid_spaces_fail_with_one_clear_line(spec, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")) as err:
        space(spec)
    assert "\n" not in str(err.value)


def test_a_quote_in_a_value_cannot_break_out_of_the_shell_line():
    import shlex

    from imgexp.tuning.space import override_value

    values = ["it's; touch /tmp/PWNED", "a b", "[1,2]"]
    overrides = [f"search.name={override_value(v)}" for v in values]
    line = shlex.join(overrides)  # as best/overrides.txt and the trial log lines write them
    assert shlex.split(line) == overrides, "each override comes back whole: nothing runs, nothing splits"
