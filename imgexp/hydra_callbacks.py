"""Hydra callbacks, named in conf/config.yaml: guard a run folder's earlier work, summarise a sweep.

Hydra turns a callback's exceptions into warnings and goes on, so a refusal
or a failed sweep sets the exit code here.
"""

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from imgexp.errors import UserError, exit_with
from imgexp.folder_lock import FolderLock
from imgexp.run_folder import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, is_finished, read_yaml


def task_config(config: DictConfig) -> dict:
    """The config without its `hydra` node, as Hydra saves it (unresolved)."""
    task = config.copy()
    with open_dict(task):
        task.pop("hydra", None)
    return OmegaConf.to_container(task, resolve=False)


class RunDirGuard(Callback):
    """A finished run is never overwritten; an interrupted one is resumed only by the same config.

    Hydra writes `.hydra/config.yaml` into the run dir before the task starts, so
    the check happens earlier, when the run starts.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if config.get("tuner") is None:  # a search's run dir only holds its log; the search locks its folder
            try:  # held until the process ends, before Hydra writes anything there
                self.lock = FolderLock(run_dir, "run").acquire()
            except UserError as err:
                exit_with(str(err))
        if is_finished(run_dir):
            exit_with(f"{run_dir} already holds a finished run ({METRICS_FILE}); choose another hydra.run.dir")
        saved = run_dir / CONFIG_FILE
        if not (run_dir / HISTORY_FILE).exists():
            return  # no epoch trained there (e.g. a config that failed its checks): nothing to keep
        if saved.exists() and read_yaml(saved) != task_config(config):  # bounded, aliases refused: data, not code
            exit_with(
                f"{run_dir} holds an interrupted run with other settings ({saved}); "
                "run the same command to resume it, or choose another hydra.run.dir"
            )

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A sweep dir is reused only by the same sweep, which then finishes the jobs it lacks."""
        sweep_dir = Path(config.hydra.sweep.dir)
        saved = sweep_dir / "multirun.yaml"
        if not saved.exists():
            return
        found = read_yaml(saved)
        if not isinstance(found, dict):
            exit_with(f"{saved} cannot be read; choose another hydra.sweep.dir")
        before = OmegaConf.create(found)
        if (list(before.hydra.overrides.task) != list(config.hydra.overrides.task)
                or task_config(before) != task_config(config)):
            exit_with(f"{sweep_dir} holds another sweep ({saved}); run that sweep's own command to finish it, "
                      "or choose another hydra.sweep.dir")


class SweepSummary(Callback):
    """After `python -m imgexp -m ...`: every job ranked in one table; exit 1 if any failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from imgexp.run_table import compare, print_table  # rich and yaml only: cheap

        sweep_dir = Path(config.hydra.sweep.dir)
        table, records = compare([sweep_dir])
        print_table(table, f"{len(table)} jobs in {sweep_dir}, ranked by val_accuracy")
        failed = [r for r in records if not r.ended]
        if failed:
            print(f"imgexp: error: {len(failed)} of {len(records)} jobs failed; "
                  f"their errors are in the table and in each job's failed.json", file=sys.stderr)
            sys.exit(1)


def sweep_params(config: DictConfig) -> list:
    """The swept keys of a multirun (command-line sweeps, then `hydra.sweeper.params`), as
    tracking.experiment.Searched: choices and ranges by value, intervals (Optuna) by their bounds."""
    from imgexp.hydra_compat import IntervalSweep, parse_overrides
    from imgexp.tracking.experiment import Searched
    from imgexp.tracking.hparams import as_hparam_value

    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    overrides = [*config.hydra.overrides.task, *(f"{k}={v}" for k, v in params.items())]
    found = {}
    for override in parse_overrides(overrides):
        if not override.is_sweep_override():
            continue
        key, value = override.get_key_element().lstrip("+~"), override.value()
        if isinstance(value, IntervalSweep):
            found[key] = Searched(key, low=float(value.start), high=float(value.end))
        else:
            try:
                found[key] = Searched(key, values=tuple(as_hparam_value(v) for v in override.sweep_iterator()))
            except Exception:  # a glob over config options: TensorBoard infers its values
                continue
    return list(found.values())


class HParamsExperiment(Callback):
    """At the start of a multirun: the HParams experiment at the sweep's root (imgexp.tracking.experiment),
    the swept keys first, so TensorBoard's table and parallel coordinates show them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from imgexp.tracking.experiment import write_experiment
        from imgexp.tracking.hparams import hparams_from_config

        task = task_config(config)
        choices = dict(OmegaConf.select(config, "hydra.runtime.choices") or {})
        hparams = hparams_from_config(OmegaConf.to_container(OmegaConf.create(task), resolve=True), choices)
        write_experiment(Path(config.hydra.sweep.dir), sweep_params(config), hparams)
