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
    """The run's name in TensorBoard's HParams table, its own folder first, then where it lies:
    `trial_0003 (search/random-cnn)`, `2 (multirun/2026-11-30/10-00-00.123456)`.

    The path is taken below the nearest `outputs` folder, else below the working directory, else
    whole. The table cuts Trial IDs after about 14 characters, so the part that tells runs apart
    comes first (screenshots in experiments/tensorboard_hparams/).
    """
    path = run_dir.absolute()
    outputs = next((p for p in path.parents if p.name == "outputs"), None)
    cwd = Path.cwd().absolute()
    if outputs is not None:
        path = path.relative_to(outputs)
    elif path.is_relative_to(cwd) and path != cwd:
        path = path.relative_to(cwd)
    own = path.parts[-2:] if path.name.startswith("execution_") and len(path.parts) > 1 else path.parts[-1:]
    where = path.parts[:-len(own)]
    name = "/".join(own)
    return f"{name} ({'/'.join(where).replace('//', '/')})" if where else name
