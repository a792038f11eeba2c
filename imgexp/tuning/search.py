"""`python -m imgexp tuner=... search_space=...`: a KerasTuner search whose trials are runs.

The search lives in a stable folder, `search.dir/<search.name>`, so running
the same command again resumes it (KerasTuner reloads its oracle; finished
trials are kept and not run again). At the end: a ranked table, and `best/`
with the best trial's model, metrics and its config as data (best.yaml), which
`python -m imgexp.rerun .../best` runs again as is.
"""

import contextlib
import logging
import shlex
import shutil
import tempfile
import sys
from pathlib import Path
from typing import Any

import keras_tuner as kt
import yaml
from omegaconf import DictConfig, OmegaConf

from imgexp import safe_write
from imgexp.compose import compose_config
from imgexp.config import Role, TunerConfig
from imgexp.data.run_cache import RunCache
from imgexp.errors import Interrupted, UserError
from imgexp.job import check_unread, to_config
from imgexp.folder_lock import LOCK_FILE, FolderLock
from imgexp.run_folder import (BEST_CONFIG_FILE, CONFUSION_FILE, HISTORY_FILE, LABELS_FILE, METRICS_FILE, MODEL_FILE,
                               PROVENANCE_FILE, REPORT_FILE, SPLIT_FILE, read_run, write_json)
from imgexp.tracking.experiment import Searched, write_experiment
from imgexp.tracking.plots import draw_run_plots
from imgexp.tracking.hparams import CONFIG_GROUPS, hparams_from_config
from imgexp.tuning import distributed, workers
from imgexp.tuning.checks import (IDENTITY_FILE, check_base_config, check_pretrained_weights, check_same_search,
                                  check_search_settings, search_identity)
from imgexp.tuning.kt_compat import is_too_many_failures, repair_oracle_state
from imgexp.tuning.oracles import make_oracle, stop_if_over_budget
from imgexp.tuning.space import SearchSpace
from imgexp.tuning.tuner import RunTuner
from imgexp.tuning.workers import LocalWorkers

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


class HandOver(Exception):
    """This worker process has run its share of trials (search.recycle_every); a fresh one goes on."""


class BudgetedTuner(RunTuner):
    """Stops starting trials once `tuner.budget_minutes` is spent (a running trial finishes),
    and hands over to a fresh worker process after `trials_per_process` trials."""

    budget_seconds: float | None = None
    trials_per_process: int | None = None

    def search_is_complete(self) -> bool:
        trials = getattr(self.oracle, "trials", None)  # a distributed worker's oracle is a client without them
        return trials is not None and self.oracle.max_trials is not None and len(trials) >= self.oracle.max_trials

    def pre_create_trial(self) -> None:
        if self.search_is_complete():
            return
        if self.trials_per_process is not None and self.trials_run >= self.trials_per_process:
            log.info("this worker ran %d trials: handing over to a fresh process", self.trials_run)
            raise HandOver
        stop_if_over_budget(self.oracle, self.started, self.budget_seconds)


def best_config(trial_config: dict[str, Any], choices: dict[str, Any]) -> dict[str, Any]:
    """best.yaml: the trial's group choices and every value it ran with, as data (no hydra node, no
    `_target_`, not a Hydra primary config): `python -m imgexp.rerun best/` reads it as such."""
    groups = [g for g in CONFIG_GROUPS if g != "experiment" and choices.get(g)]
    values = {k: v for k, v in trial_config.items() if k not in (*SEARCH_KEYS, "experiment", "hydra")}
    return {"choices": {g: choices[g] for g in groups}, **values}


def export_best(tuner: RunTuner, search_dir: Path) -> Path | None:
    """best/: the best trial's config (runnable), model, labels and metrics."""
    best = tuner.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        return None
    trial_dir = Path(tuner.get_trial_dir(best[0].trial_id))
    source = trial_dir if (trial_dir / MODEL_FILE).exists() else trial_dir / "execution_0"
    trial = read_run(source)  # the config and group choices the trial ran with
    out = search_dir / "best"
    if out.is_symlink():  # never write through a link out of the search folder
        out.unlink()
    for stale in (out.iterdir() if out.is_dir() else []):  # files of an earlier best trial
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    for name in (MODEL_FILE, LABELS_FILE, METRICS_FILE, HISTORY_FILE, CONFUSION_FILE, REPORT_FILE, PROVENANCE_FILE,
                 SPLIT_FILE):
        if (source / name).is_file():
            safe_write.copy_file(source / name, out / name, search_dir)
    draw_run_plots(out)  # trials skip their plots; the best one gets them here
    overrides = tuner.trial_overrides(best[0])
    config = best_config(trial.config, trial.choices)
    safe_write.write_text(out / BEST_CONFIG_FILE,
                          f"# The best trial ({best[0].trial_id}) of {search_dir}. Run it again with:\n"
                          f"#   python -m imgexp.rerun {shlex.quote(str(out))}\n"
                          + yaml.safe_dump(config, sort_keys=False), search_dir)
    safe_write.write_text(out / "overrides.txt", shlex.join(overrides) + "\n", search_dir)  # pasted into a shell
    return out


def clear_search_folder(search_dir: Path) -> None:
    """search.overwrite=true: everything in the folder goes but its lock, which this process holds
    (KerasTuner's own overwrite would delete the lock file too, letting a second process in)."""
    for child in search_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def write_search_experiment(search_dir: Path, space: SearchSpace, base_cfg: DictConfig, choices: dict[str, Any]) -> None:
    """The HParams experiment for this search's sessions: its searched keys first (imgexp.tracking.experiment)."""
    hparams = hparams_from_config(OmegaConf.to_container(base_cfg, resolve=True), choices)
    write_experiment(search_dir, [searched(p) for p in space.params], hparams)


def searched(param) -> Searched:
    if param.kind == "choice":
        return Searched(param.key, values=param.values)
    if param.kind == "bool":
        return Searched(param.key, values=(False, True))
    return Searched(param.key, low=float(param.low), high=float(param.high))


def run_search(cfg: DictConfig, task_overrides: list[str], choices: dict[str, Any],
               run_dir: Path | None = None) -> float | None:
    """Run (or resume) the search the config describes; return the best objective value.

    One process, or (search.distributed) a KerasTuner chief or worker; the chief
    and a single process end with the ranked table and `best/`.
    """
    tuner_cfg: TunerConfig = OmegaConf.to_object(cfg.tuner)
    check_search_settings(cfg, tuner_cfg)
    dist = cfg.search.distributed
    role = distributed.role_of(dist)
    run_dir = run_dir or Path.cwd()
    search_dir = Path(cfg.search.dir).absolute() / search_name(cfg, choices)
    # One process owns a search folder: a single search, a recycling supervisor or a chief. Its own
    # worker processes (search.worker) and distributed workers write only their trials' folders.
    owner = not cfg.search.worker and role is not Role.worker
    with FolderLock(search_dir, "search") if owner else contextlib.nullcontext():
        return owned_search(cfg, task_overrides, choices, run_dir, search_dir, tuner_cfg, role)


def owned_search(cfg: DictConfig, task_overrides: list[str], choices: dict[str, Any], run_dir: Path,
                 search_dir: Path, tuner_cfg: TunerConfig, role: Role | None) -> float | None:
    dist = cfg.search.distributed
    if cfg.search.worker:
        workers.die_with_parent()
    elif cfg.search.recycle_every > 0 and role is None:
        workers.supervise_recycled(run_dir)
        return None
    if role is Role.worker:
        distributed.connect_as_worker(dist)

    base = base_overrides(task_overrides)
    compose = lambda overrides: compose_config(overrides)[0]  # noqa: E731
    space = SearchSpace.from_config(OmegaConf.to_container(cfg.search_space) if cfg.search_space else None,
                                    compose, base)
    log.info("search in %s over %s", search_dir, ", ".join(space.keys))
    overwrite = bool(cfg.search.overwrite) and role is not Role.worker  # only the chief may start over
    identity = search_identity(tuner_cfg, cfg.search_space, base)
    base_cfg, base_choices = compose_config(base)  # the config every trial shares
    cache = RunCache()  # what this process's trials reuse
    if role is not Role.worker:
        if not overwrite:
            check_same_search(search_dir, identity)
        check_base_config(base_cfg, cache)
        check_unread(to_config(cfg), choices, strict=True)  # e.g. tuner.max_trials under tuner=hyperband
        check_pretrained_weights(space, base, compose)
    if overwrite:
        clear_search_folder(search_dir)
    elif role is not Role.worker:
        repair_oracle_state(search_dir, make_oracle(tuner_cfg, space.hyperparameters()))
    tuner = BudgetedTuner(make_oracle(tuner_cfg, space.hyperparameters()), space, base, search_dir,
                          tuner_cfg.executions_per_trial, cfg.trainer.seed, overwrite=False, cache=cache)
    if role is not Role.worker:
        write_json(search_dir / IDENTITY_FILE, identity, search_dir)
        write_search_experiment(search_dir, space, base_cfg, base_choices)
    budget = tuner_cfg.budget_minutes * 60 if tuner_cfg.budget_minutes is not None else None
    tuner.continue_promoted = tuner_cfg.continue_promoted
    if base_cfg.trainer.fine_tune_epochs > 0:
        tuner.head_epochs = base_cfg.trainer.epochs
    if cfg.search.worker and cfg.search.recycle_every > 0:
        tuner.trials_per_process = cfg.search.recycle_every
    if role is Role.worker:
        distributed.authenticate_worker(tuner, dist, search_dir)

    if role is Role.chief:
        local = LocalWorkers(dist.local_workers, run_dir, dist.max_restarts) if dist.local_workers else None
        # Local workers talk to the chief over a socket in a fresh 0700 folder: no port for others to reach.
        socket_dir = tempfile.mkdtemp(prefix="imgexp-chief-") if local else None
        address = f"unix:{socket_dir}/chief.sock" if local else dist.address
        token = distributed.chief_token(dist, search_dir)
        try:
            stopped_early = distributed.serve(tuner, address, dist.status_every, budget, local, token, dist)
        finally:
            if socket_dir:
                shutil.rmtree(socket_dir, ignore_errors=True)
    else:
        tuner.budget_seconds = budget if role is None else None  # workers: the chief keeps the budget
        stopped_early = search_here(tuner, dist.address)
    if role is Role.worker:
        return None  # the chief ranks the trials and exports the best
    return report(tuner, search_dir, tuner_cfg, stopped_early)


def report(tuner: BudgetedTuner, search_dir: Path, tuner_cfg: TunerConfig, stopped_early: bool) -> float | None:
    """The ranked table and best/; the best score, or one line if too many trials failed in a row."""
    from imgexp.run_table import compare, print_table

    table, _ = compare([search_dir], tuner_cfg.objective.value)
    print_table(table, f"{len(table)} trials in {search_dir}, ranked by {tuner_cfg.objective.value}")
    best_dir = export_best(tuner, search_dir)
    if best_dir:
        log.info("best trial: %s (python -m imgexp.rerun %s runs it again)", best_dir, shlex.quote(str(best_dir)))
    if stopped_early:
        raise UserError(f"the search stopped after {tuner_cfg.max_consecutive_failed_trials} failed trials in a row "
                        "(tuner.max_consecutive_failed_trials); see the errors above and in each trial's failed.json")
    best = tuner.oracle.get_best_trials(1)
    return best[0].score if best else None


def search_here(tuner: BudgetedTuner, chief_address: str | None) -> bool:
    """Run trials in this process until the oracle stops; True if too many failed in a row."""
    import grpc

    try:
        tuner.search(verbose=0)
    except KeyboardInterrupt:
        ended = sum(read_run(d).ended for d in tuner.search_dir.glob("trial_*"))  # finished or pruned, on disk
        sized = isinstance(tuner.oracle, (kt.oracles.RandomSearchOracle, kt.oracles.BayesianOptimizationOracle))
        total = tuner.oracle.max_trials if sized else None  # grid and Hyperband size themselves
        raise Interrupted(f"after {ended} finished trial(s)" + (f" of {total}" if total else "")) from None
    except HandOver:
        sys.exit(workers.EXIT_RECYCLE)  # the supervisor starts a fresh worker, which resumes the search
    except grpc.RpcError as err:
        raise UserError(f"the chief at {chief_address} stopped answering ({err.code().name}); start it again "
                        "with the same command (it resumes the search), then this worker") from None
    except RuntimeError as err:  # KerasTuner: too many consecutive failed trials
        if not is_too_many_failures(err):
            raise
        return True
    return False
