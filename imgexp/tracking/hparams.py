"""The hyperparameters of a run, named by their config keys.

The same names come out of a single run, a multirun job and a tuner trial, so
TensorBoard's HParams dashboard lines them all up in one table.
"""

from pathlib import Path
from typing import Any

CONFIG_GROUPS = ("dataset", "augmentation", "model", "optimizer", "trainer", "pruner", "experiment")
# Keys that change how a run reports, not what it learns.
NOT_HYPERPARAMETERS = {"trainer.verbose"}

HParamValue = bool | int | float | str


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def as_hparam_value(value: Any) -> HParamValue:
    """TensorBoard takes bool, number or string: lists and None become strings."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value"):  # Enum
        return value.value
    return str(value)


def hparams_from_config(config: dict[str, Any], choices: dict[str, Any]) -> dict[str, HParamValue]:
    """Group choices (`model`: "cnn") plus every leaf key (`optimizer.lr`: 0.001)."""
    hparams: dict[str, HParamValue] = {
        group: as_hparam_value(choices.get(group) or "none") for group in CONFIG_GROUPS
    }
    for key, value in flatten({k: v for k, v in config.items() if k in CONFIG_GROUPS}).items():
        if key.endswith(".name") or key in NOT_HYPERPARAMETERS or value is None:
            continue  # `model.name` repeats `model`; an unset key is an empty cell, not a "None" string
        hparams[key] = as_hparam_value(value)
    return hparams


def session_name(run_dir: Path) -> str:
    """The run's name in TensorBoard's HParams table: its path below the nearest `outputs` folder
    (`search/random-cnn/trial_3`, `multirun/<date>/<time>/2`), else below the working directory, else
    the whole path. TensorBoard cuts long names to a common prefix, so absolute paths would all look alike."""
    path = run_dir.absolute()
    for parent in path.parents:
        if parent.name == "outputs":
            return str(path.relative_to(parent))
    cwd = Path.cwd().absolute()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) and path != cwd else str(path)
