"""`python -m imgexp tuner=... search_space=...`: a KerasTuner search whose trials are runs.

The search lives in a stable folder, `search.dir/<search.name>`, so running
the same command again resumes it (KerasTuner reloads its oracle; finished
trials are kept and not run again). At the end: a ranked table, and `best/`
with the best trial's model, metrics and a config (best.yaml) that
`python -m imgexp --config-dir .../best --config-name best` runs again as is.
"""

import itertools
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from imgexp.compose import compose_config
from imgexp.config import TunerConfig
from imgexp.errors import UserError
from imgexp.tracking.hparams import CONFIG_GROUPS
from imgexp.tuning.oracles import make_oracle
from imgexp.tuning.space import SearchSpace
from imgexp.tuning.tuner import RunTuner

log = logging.getLogger("imgexp.search")

SEARCH_KEYS = ("tuner", "search_space", "search")  # overrides that shape the search, not its trials


def base_overrides(task_overrides: list[str]) -> list[str]:
    """The command's overrides that every trial shares (the search's own keys left out)."""
    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~").split(".", 1)[0]
    return [o for o in task_overrides if key(o) not in SEARCH_KEYS]


def search_name(cfg: DictConfig, choices: dict[str, Any]) -> str:
    if cfg.search.name:
        return str(cfg.search.name)
    return f"{choices.get('tuner')}-{choices.get('search_space') or 'custom'}"


# A worker's exit code for "recycled after its share of trials; start another".
EXIT_RECYCLE = 75


class BudgetedTuner(RunTuner):
    """Stops starting trials once `tuner.budget_minutes` is spent (a running trial finishes),
    or, in a worker process, once it has run `trials_per_process` trials."""

    budget_seconds: float | None = None
    trials_per_process: int | None = None
    recycled = False

    def stop_new_trials(self) -> None:
        # The oracle reports STOPPED once it holds max_trials trials. max_trials is not part
        # of KerasTuner's saved state, so the next process starts with the configured one.
        self.oracle.max_trials = len(self.oracle.trials)

    def pre_create_trial(self) -> None:
        if self.oracle.max_trials is not None and self.oracle.max_trials <= len(self.oracle.trials):
            return
        if self.budget_seconds is not None and time.monotonic() - self.started > self.budget_seconds:
            log.info("the %.1f-minute budget is spent: no new trials", self.budget_seconds / 60)
            self.stop_new_trials()
        elif self.trials_per_process is not None and self.trials_run >= self.trials_per_process:
            log.info("this worker ran %d trials: handing over to a fresh process", self.trials_run)
            self.recycled = True
            self.stop_new_trials()


def runnable_config(trial_config: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """A primary config for `python -m imgexp --config-dir DIR --config-name best`.

    Not named config.yaml: the package's own config.yaml comes first on the search path.

    The trial's groups as defaults (so the schema applies) and every value it ran with.
    """
    groups = [g for g in CONFIG_GROUPS if g != "experiment" and choices.get(g)]
    values = {k: v for k, v in trial_config.items() if k not in (*SEARCH_KEYS, "experiment")}
    return {
        "defaults": ["config_schema", *({g: choices[g]} for g in groups), "_self_"],
        **values,
        "hydra": {"callbacks": {"run_dir_guard": {"_target_": "imgexp.run_dir_guard.RunDirGuard"}}},
    }


def export_best(tuner: RunTuner, search_dir: Path) -> Path | None:
    """best/: the best trial's config (runnable), model, labels and metrics."""
    best = tuner.oracle.get_best_trials(1)
    if not best:
        return None
    trial_dir = Path(tuner.get_trial_dir(best[0].trial_id))
    source = trial_dir if (trial_dir / "model.keras").exists() else trial_dir / "execution_0"
    out = search_dir / "best"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in ("model.keras", "labels.json", "metrics.json", "history.csv", "history.png", "confusion_matrix.png"):
        if (source / name).exists():
            shutil.copy2(source / name, out / name)
    overrides = tuner.trial_overrides(best[0])
    cfg, choices = compose_config(overrides)
    config = runnable_config(OmegaConf.to_container(cfg, enum_to_str=True), choices)
    (out / "best.yaml").write_text(
        f"# The best trial ({best[0].trial_id}) of {search_dir}. Run it again with:\n"
        f"#   python -m imgexp --config-dir {out} --config-name best\n"
        + yaml.safe_dump(config, sort_keys=False))
    (out / "overrides.txt").write_text(" ".join(overrides) + "\n")
    return out


def supervise_workers(run_dir: Path) -> None:
    """Run the same command in worker processes, each replaced after `search.recycle_every` trials.

    Memory that TensorFlow keeps after a trial goes away with its process; each
    new worker resumes the search from KerasTuner's state on disk.
    """
    for number in itertools.count(1):
        args = [a for a in sys.argv[1:] if not a.startswith("hydra.run.dir=")]
        command = [sys.executable, "-m", "imgexp", *args, "search.worker=true",
                   f"hydra.run.dir={run_dir / 'workers' / str(number)}"]
        log.info("starting search worker %d", number)
        code = subprocess.run(command).returncode
        if code == 0:
            return
        if code != EXIT_RECYCLE:
            sys.exit(code)  # the worker has said what went wrong


def run_search(cfg: DictConfig, task_overrides: list[str], choices: dict[str, Any],
               run_dir: Path | None = None) -> float | None:
    """Run (or resume) the search the config describes; return the best objective value."""
    from imgexp.compare import compare, print_table

    if cfg.search.recycle_every > 0 and not cfg.search.worker:
        supervise_workers(run_dir or Path.cwd())
        return None

    tuner_cfg: TunerConfig = OmegaConf.to_object(cfg.tuner)
    base = base_overrides(task_overrides)
    compose = lambda overrides: compose_config(overrides)[0]  # noqa: E731
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.search_space) if cfg.search_space else None,
                                    compose, base)
    search_dir = Path(cfg.search.dir).absolute() / search_name(cfg, choices)
    log.info("search in %s over %s", search_dir, ", ".join(space.keys))
    tuner = BudgetedTuner(make_oracle(tuner_cfg, space.hyperparameters()), space, base, search_dir,
                          tuner_cfg.executions_per_trial, cfg.trainer.seed, bool(cfg.search.overwrite))
    if tuner_cfg.budget_minutes is not None:
        tuner.budget_seconds = tuner_cfg.budget_minutes * 60
    if cfg.search.worker:
        tuner.trials_per_process = cfg.search.recycle_every
    stopped_early = None
    try:
        tuner.search(verbose=0)
    except RuntimeError as err:  # KerasTuner: too many consecutive failed trials
        if "consecutive failures" not in str(err):
            raise
        stopped_early = (f"the search stopped after {tuner_cfg.max_consecutive_failed_trials} failed trials in a row "
                         f"(tuner.max_consecutive_failed_trials); see the errors above and in each trial's failed.json")
    if tuner.recycled and not stopped_early:
        sys.exit(EXIT_RECYCLE)  # the supervisor starts a fresh worker, which resumes the search
    table, _ = compare([search_dir], tuner_cfg.objective.value)
    print_table(table, f"{len(table)} trials in {search_dir}, ranked by {tuner_cfg.objective.value}")
    best_dir = export_best(tuner, search_dir)
    if best_dir:
        log.info("best trial: %s (python -m imgexp --config-dir %s --config-name best)", best_dir, best_dir)
    if stopped_early:
        raise UserError(stopped_early)
    best = tuner.oracle.get_best_trials(1)
    return best[0].score if best else None
