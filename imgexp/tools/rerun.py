"""Run a finished run, trial or a search's best/ again: its config read as data, never as code.

    python -m imgexp.rerun outputs/search/random-cnn/best            the best trial, as it ran
    python -m imgexp.rerun outputs/2026-12-01/10-00-00.123456 trainer.epochs=30

The folder may come from anyone (a colleague, a download): its best.yaml (or
.hydra/config.yaml with .hydra/hydra.yaml's group choices) is read with a
bounded, alias-free safe_load, and refused in one line if it holds a `hydra`
node, a `_target_`, an interpolation (`${...}`) or a key outside the config
groups. What remains becomes ordinary command-line overrides (group choices,
then `key=value`), composed and checked against the schema by `python -m imgexp`
itself, into a new run folder: nothing in the folder is executed or written.
"""

import sys
from pathlib import Path
from typing import Any

from imgexp.errors import UserError
from imgexp.run_folder import BEST_CONFIG_FILE, CONFIG_FILE, HYDRA_FILE, load_yaml_text
from imgexp.tools.cli import OneLineParser, run_tool

GROUPS = ("dataset", "augmentation", "model", "optimizer", "trainer", "pruner")  # what a run is made of
HYDRA_KEYWORDS = ("true", "false", "null", "nan", "inf")  # unquoted, Hydra reads these as values, not strings
SKIPPED = ("tuner", "search_space", "search", "experiment")  # a search's own keys: a rerun is one run


def refuse_code(node: Any, where: str, path: Path) -> None:
    """Data only: no `_target_` (Hydra would instantiate it), no interpolation (resolvers run)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" or (isinstance(key, str) and key.startswith("_") and key.endswith("_")):
                raise UserError(f"{path}: {where}{key} is refused; a run's config is data, never something to run")
            refuse_code(value, f"{where}{key}.", path)
    elif isinstance(node, list):
        for value in node:
            refuse_code(value, where, path)
    elif isinstance(node, str) and "${" in node:
        raise UserError(f"{path}: {where.rstrip('.')} holds an interpolation ({node[:40]!r}); refused, a rerun "
                        "takes values as they are")


def read_run_config(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(config values by group, group choices) of a best/ or a run folder."""
    if (folder / BEST_CONFIG_FILE).is_file():
        path = folder / BEST_CONFIG_FILE
        found = load_yaml_text(path)
        config = {k: v for k, v in (found or {}).items() if k != "choices"} if isinstance(found, dict) else None
        choices = (found or {}).get("choices", {}) if isinstance(found, dict) else {}
    elif (folder / CONFIG_FILE).is_file():
        path = folder / CONFIG_FILE
        config = load_yaml_text(path)
        hydra = load_yaml_text(folder / HYDRA_FILE) if (folder / HYDRA_FILE).is_file() else {}
        choices = ((hydra or {}).get("hydra") or {}).get("runtime", {}).get("choices", {}) if isinstance(hydra, dict) else {}
    else:
        raise UserError(f"{folder}: no {BEST_CONFIG_FILE} or {CONFIG_FILE}; give a run folder or a search's best/")
    if not isinstance(config, dict) or not isinstance(choices, dict):
        raise UserError(f"{path}: not a run's config (a mapping of config groups)")
    if "hydra" in config or "hydra" in choices:
        raise UserError(f"{path}: holds a hydra node (Hydra's settings: callbacks, output folders); refused, a "
                        "rerun takes only the config groups")
    unknown = [k for k in config if k not in (*GROUPS, *SKIPPED)]
    if unknown:
        raise UserError(f"{path}: {unknown[0]} is not a config group ({', '.join(GROUPS)})")
    refuse_code(config, "", path)
    refuse_code(choices, "choices.", path)
    return {g: config[g] for g in GROUPS if isinstance(config.get(g), dict)}, \
        {g: str(choices[g]) for g in GROUPS if choices.get(g) is not None}


def as_override_value(value: Any) -> str:
    """A YAML value as Hydra override syntax (strings quoted so nothing in them is grammar)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(as_override_value(v) for v in value) + "]"
    if isinstance(value, dict):
        raise UserError(f"a nested mapping ({str(value)[:40]}) cannot be given as an override")
    if str(value).isidentifier() and str(value).lower() not in HYDRA_KEYWORDS:
        return str(value)  # an option or enum name, as a user types it
    return "'" + str(value).replace("'", "\\'") + "'"


def overrides_of(config: dict[str, Any], choices: dict[str, str]) -> list[str]:
    """Group choices first (so the schema of each option applies), then every value the run had."""
    options = {**{g: str(v["name"]) for g, v in config.items() if v.get("name") is not None}, **choices}
    found = [f"{group}={as_override_value(option)}" for group, option in options.items()]
    for group, values in config.items():
        found += [f"{group}.{key}={as_override_value(value)}" for key, value in values.items() if key != "name"]
    return found


def rerun(folder: Path, extra: list[str]) -> int:
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; give a run folder or a search's best/")
    config, choices = read_run_config(folder)
    from imgexp.app import main as imgexp_main

    sys.argv = ["imgexp", *overrides_of(config, choices), *extra]
    print(f"imgexp.rerun: {folder} as python -m imgexp with {len(sys.argv) - 1} overrides", file=sys.stderr)
    imgexp_main()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m imgexp.rerun", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, multirun job, trial or a search's best/")
    parser.add_argument("overrides", nargs="*", help="key=value to change (e.g. trainer.epochs=30)")
    args = parser.parse_args(argv)
    return run_tool("imgexp.rerun", lambda: rerun(args.run_dir, args.overrides))
