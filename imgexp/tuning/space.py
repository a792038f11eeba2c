"""Search spaces written in YAML over config keys, as KerasTuner hyperparameters.

    optimizer.lr: {min: 1e-4, max: 1e-2, sampling: log}   # float range
    model.dense_units: {min: 64, max: 512, step: 64}      # int range
    model: [cnn, mobilenetv2]                             # choice (a config group too)
    model.filters: [[16, 32], [32, 64]]                   # choice of lists
    trainer.deterministic: bool                           # true or false

A hyperparameter's name IS its config key, so a trial's values are Hydra
overrides and any trial can be re-run alone from the command line. A leaf key
of a group that the space also chooses (`model.dense_units` with `model:
[cnn, mobilenetv2]`) is only active for the options that have it.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras_tuner as kt

from imgexp.errors import UserError

Composer = Callable[[list[str]], Any]  # overrides -> composed DictConfig (raises on bad ones)


@dataclass(frozen=True)
class Param:
    key: str
    kind: str  # choice | int | float | bool
    values: tuple = ()  # choice: the values, lists kept as JSON strings for KerasTuner
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    sampling: str = "linear"
    only_for: tuple[str, tuple[str, ...]] | None = None  # (group, the options that have this key)

    def declare(self, hp: kt.HyperParameters) -> None:
        if self.kind == "choice":
            hp.Choice(self.key, list(self.values))
        elif self.kind == "int":
            hp.Int(self.key, int(self.low), int(self.high), step=int(self.step or 1))
        elif self.kind == "float":
            hp.Float(self.key, float(self.low), float(self.high), step=self.step, sampling=self.sampling)
        else:
            hp.Boolean(self.key)


def parse_param(key: str, spec: Any) -> Param:
    """One entry of the YAML space, checked for form (not yet against the config)."""
    where = f"search_space: {key}"
    if spec == "bool":
        return Param(key, "bool")
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"{where}: an empty choice; list at least one value")
        values = tuple(json.dumps(v) if isinstance(v, (list, dict)) else v for v in spec)
        if len({type(v) for v in values}) > 1:
            raise UserError(f"{where}: choices of mixed types {list(spec)}; give values of one type")
        return Param(key, "choice", values=values)
    if isinstance(spec, dict):
        unknown = set(spec) - {"min", "max", "step", "sampling"}
        if unknown or "min" not in spec or "max" not in spec:
            raise UserError(f"{where}: a range is {{min, max}} with optional step and sampling, got {dict(spec)}")
        low, high = (as_number(spec[k]) for k in ("min", "max"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise UserError(f"{where}: min and max must be numbers, got {low!r} and {high!r}")
        if low > high:
            raise UserError(f"{where}: min {low} is greater than max {high}")
        sampling = spec.get("sampling", "linear")
        if sampling not in ("linear", "log"):
            raise UserError(f"{where}: sampling must be linear or log, got {sampling!r}")
        if sampling == "log" and low <= 0:
            raise UserError(f"{where}: log sampling needs min > 0, got {low}")
        is_int = isinstance(low, int) and isinstance(high, int) and "sampling" not in spec
        return Param(key, "int" if is_int else "float", low=low, high=high, step=spec.get("step"), sampling=sampling)
    raise UserError(f"{where}: give a list of values, {{min, max}}, or bool; got {spec!r}")


def as_number(value: Any) -> Any:
    """YAML reads 1e-4 (no dot) as text; take it as the number it means."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def override_value(value: Any) -> str:
    """A value as Hydra override syntax: lists as [a,b], odd strings quoted."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        return value.replace(" ", "")  # a JSON list from a choice
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and not all(c.isalnum() or c in "_-./" for c in value):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


class SearchSpace:
    """The parsed, validated space: declares hyperparameters, turns values into overrides."""

    def __init__(self, params: list[Param]):
        self.params = params

    @classmethod
    def from_config(cls, space: dict[str, Any] | None, compose: Composer, base: list[str]) -> "SearchSpace":
        """Parse and check every key against the configs it can apply to."""
        if not space:
            raise UserError("search_space is empty; choose one, e.g. search_space=cnn, or give keys to search")
        params = [parse_param(str(key), spec) for key, spec in space.items()]
        groups = {p.key: p for p in params if "." not in p.key}
        checked = []
        for p in params:
            checked.append(check_against_config(p, groups, compose, base))
        return cls(checked)

    def hyperparameters(self) -> kt.HyperParameters:
        hp = kt.HyperParameters()
        for p in self.params:  # groups first: conditions on them need them declared
            if p.only_for is None:
                p.declare(hp)
        for p in self.params:
            if p.only_for is not None:
                group, options = p.only_for
                with hp.conditional_scope(group, list(options)):
                    p.declare(hp)
        return hp

    def overrides(self, values: dict[str, Any]) -> list[str]:
        """Hydra overrides for a trial's active values (KerasTuner's own `tuner/*` keys left out)."""
        keys = {p.key for p in self.params}
        return [f"{k}={override_value(v)}" for k, v in values.items() if k in keys]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]


def check_against_config(p: Param, groups: dict[str, Param], compose: Composer, base: list[str]) -> Param:
    """A key must exist (in the base config or some chosen group option) with a matching type."""
    if "." not in p.key:  # a config group: every choice must be one of its options
        if p.kind != "choice":
            raise UserError(f"search_space: {p.key} is a config group; list its options, e.g. [a, b]")
        for option in p.values:
            try_compose(compose, [*base, f"{p.key}={option}"], f"search_space: {p.key}: {option!r}")
        return p

    group = p.key.split(".", 1)[0]
    options = groups[group].values if group in groups else (None,)
    having = []
    for option in options:
        prefix = [f"{group}={option}"] if option is not None else []
        cfg = try_compose(compose, [*base, *prefix], f"search_space: {p.key}")
        node = select(cfg, p.key)
        if node is not _MISSING:
            check_type(p, node)
            having.append(option)
            if p.kind == "int" and isinstance(node, float):  # {min: 0, max: 1} on a float key
                p = Param(**{**p.__dict__, "kind": "float"})
    if not having:
        raise UserError(f"search_space: {p.key} is not a config key; check the spelling (python -m imgexp --cfg job)")
    if group in groups and len(having) < len(options):
        return Param(**{**p.__dict__, "only_for": (group, tuple(having))})
    return p


_MISSING = object()


def select(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            return _MISSING
        node = node[part]
    return node


def try_compose(compose: Composer, overrides: list[str], where: str):
    try:
        return compose(overrides)
    except Exception as err:  # Hydra's and OmegaConf's errors: a bad option or value
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{where}: {first}") from err


def check_type(p: Param, current: Any) -> None:
    """Values of the space must be of the key's type in the config."""
    value = getattr(current, "value", current)  # Enum
    samples = [json.loads(v) if isinstance(v, str) and v.startswith("[") else v for v in p.values]
    if p.kind in ("int", "float"):
        samples = [p.low, p.high]
    elif p.kind == "bool":
        samples = [True]
    for sample in samples:
        ok = (
            value is None
            or (isinstance(value, bool) and isinstance(sample, bool))
            or (isinstance(value, float) and isinstance(sample, (int, float)) and not isinstance(sample, bool))
            or (isinstance(value, int) and not isinstance(value, bool) and isinstance(sample, int)
                and not isinstance(sample, bool))
            or (isinstance(value, str) and isinstance(sample, str))
            or (hasattr(value, "__len__") and not isinstance(value, str) and isinstance(sample, list))
        )
        if not ok:
            raise UserError(
                f"search_space: {p.key}: {sample!r} is not of the key's type "
                f"({type(value).__name__}, now {value!r})"
            )
