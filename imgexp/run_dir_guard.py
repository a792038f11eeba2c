"""A Hydra callback that keeps a run directory's earlier work safe.

Hydra writes `.hydra/config.yaml` into the run dir before the task starts, so
the check has to happen earlier, when the run starts: a finished run is never
overwritten, and an interrupted one is only resumed by the same config.
Hydra turns a callback's exceptions into warnings and goes on, so a refusal
exits here.
"""

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from imgexp.errors import exit_with
from imgexp.finished_run import MODEL_FILE as FINISHED_MARK


def task_config(config: DictConfig) -> dict:
    """The config without its `hydra` node, as Hydra saves it (unresolved)."""
    task = config.copy()
    with open_dict(task):
        task.pop("hydra", None)
    return OmegaConf.to_container(task, resolve=False)


class RunDirGuard(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if (run_dir / FINISHED_MARK).exists():
            exit_with(f"{run_dir} already holds a finished run ({FINISHED_MARK}); choose another hydra.run.dir")
        saved = run_dir / ".hydra" / "config.yaml"
        if saved.exists() and OmegaConf.to_container(OmegaConf.load(saved)) != task_config(config):
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
        before = OmegaConf.load(saved)
        if (list(before.hydra.overrides.task) != list(config.hydra.overrides.task)
                or task_config(before) != task_config(config)):
            exit_with(f"{sweep_dir} holds another sweep ({saved}); run that sweep's own command to finish it, "
                      "or choose another hydra.sweep.dir")
