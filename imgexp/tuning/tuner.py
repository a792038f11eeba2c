"""A KerasTuner tuner whose trials are ordinary imgexp runs.

KerasTuner's oracle picks values and keeps the search state on disk (so a
killed search resumes); this tuner turns the values into Hydra overrides,
composes the trial's config and runs it through the same `run_job` as
`python -m imgexp` (imgexp.job), in the trial's own folder.
"""

import json
import logging
import os
import re
import shlex
import statistics
import time
from pathlib import Path

import keras
import keras_tuner as kt
from omegaconf import OmegaConf

from imgexp import safe_write
from imgexp.compose import compose_config
from imgexp.data.run_cache import RunCache
from imgexp.errors import UserError
from imgexp.job import run_job
from imgexp.run_context import RunContext
from imgexp.run_folder import read_run, write_config, write_failure
from imgexp.training.continuation import Continuation
from imgexp.tuning.kt_compat import BaseTuner, is_worker, quiet_failed_trials, write_state_files_atomically
from imgexp.tuning.space import SearchSpace

log = logging.getLogger("imgexp.search")
# KerasTuner prints a traceback for every failed trial, a config that cannot train included;
# imgexp reports those in one line and logs the traceback of real bugs itself (run_trial_config).
quiet_failed_trials()
write_state_files_atomically()  # a kill never leaves half an oracle.json or trial.json

OBJECTIVES = ("val_accuracy", "val_loss")  # what a trial reports to the oracle
# Hyperband's own per-trial values: how long the trial trains, and (a promoted trial) which trial it
# continues from which epoch. They never become config keys.
HYPERBAND_EPOCHS = "tuner/epochs"
HYPERBAND_PARENT = "tuner/trial_id"
HYPERBAND_INITIAL_EPOCH = "tuner/initial_epoch"
LIBRARY_ERROR_PREFIX = re.compile(r"^keras_tuner(\.\w+)*\.FailedTrialError: ")  # KerasTuner's message wrapping
TRIAL_ID = re.compile(r"\d{1,12}")


def run_trial_config(overrides: list[str], run_dir: Path, context: RunContext) -> dict[str, float]:
    """Compose and run one trial execution; a finished one is read back, not run again. A pruner
    compares it with the other trials in the search folder (`context.cohort`)."""
    earlier = read_run(run_dir)
    if earlier.ended:  # finished (or pruned) before the search was interrupted
        return earlier.metrics
    try:
        with context.stopwatch.phase("compose"):
            cfg, choices = compose_config(overrides, context.cache)
            write_config(run_dir, OmegaConf.to_container(cfg, enum_to_str=True), overrides, choices)
        return run_job(cfg, run_dir, choices, context)
    except UserError as err:  # this trial cannot work (too small an input, NaN loss...): record it, go on
        write_failure(run_dir, str(err))
        raise kt.errors.FailedTrialError(str(err)) from err
    except Exception as err:  # a bug: its traceback goes to the log, KerasTuner retries or fails the trial
        log.exception("trial in %s failed", run_dir)
        write_failure(run_dir, f"{type(err).__name__}: {err}")
        raise
    finally:
        # Models of finished trials must not pile up; Keras' full gc.collect() would add 0.28 s
        # to every trial (profiled), and Python's own collector frees the same cycles soon after.
        keras.backend.clear_session(free_memory=False)


class RunTuner(BaseTuner):
    def __init__(self, oracle: kt.Oracle, space: SearchSpace, base_overrides: list[str], search_dir: Path,
                 executions_per_trial: int, seed: int, overwrite: bool, cache: RunCache):
        super().__init__(oracle=oracle, directory=str(search_dir.parent), project_name=search_dir.name,
                         overwrite=overwrite)
        self.space, self.base, self.search_dir = space, base_overrides, search_dir
        self.executions, self.seed = executions_per_trial, seed
        self.started = time.monotonic()
        self.trials_run = 0
        self.overrides_by_trial: dict[str, list[str]] = {}
        self.continue_promoted = True
        self.head_epochs: int | None = None  # two-phase fine-tuning: the head phase's epochs (budget_overrides)
        self.cache = cache  # what the trials in this process reuse: listings, decoded images, features

    def trial_overrides(self, trial) -> list[str]:
        """The trial's Hydra overrides (worked out once per trial): the base ones, then its values."""
        if trial.trial_id not in self.overrides_by_trial:
            values = trial.hyperparameters.values
            extra = self.budget_overrides(int(values[HYPERBAND_EPOCHS])) if HYPERBAND_EPOCHS in values else []
            self.overrides_by_trial[trial.trial_id] = [*self.base, *self.space.overrides(values), *extra]
        return self.overrides_by_trial[trial.trial_id]

    def budget_overrides(self, epochs: int) -> list[str]:
        """Hyperband's `tuner/epochs` as the run's epochs. With two phases (`head_epochs`: the base
        config's trainer.epochs) the head takes up to that many and fine-tuning the rest, so a
        promoted trial goes on in the phase its parent stopped in (README: Transfer learning)."""
        if self.head_epochs is None:
            return [f"trainer.epochs={epochs}"]
        if epochs <= self.head_epochs:  # the head phase alone: a frozen backbone
            return [f"trainer.epochs={epochs}", "trainer.fine_tune_epochs=0", "model.trainable=false"]
        return [f"trainer.epochs={self.head_epochs}", f"trainer.fine_tune_epochs={epochs - self.head_epochs}"]

    def continuation(self, trial, execution: str = "") -> Continuation | None:
        """A promoted Hyperband trial goes on from where its parent stopped (tuner.continue_promoted)."""
        values = trial.hyperparameters.values
        parent = values.get(HYPERBAND_PARENT)
        if not self.continue_promoted or parent is None:
            return None
        parent_dir = self.checked_trial_dir(parent)
        return Continuation(parent_dir / execution, parent_dir.name, int(values[HYPERBAND_INITIAL_EPOCH]))

    def checked_trial_dir(self, trial_id) -> Path:
        """The folder of a trial id that a chief handed out: KerasTuner's ids are digits, and the folder
        must lie inside the search folder (a forged id like `/../../x` is refused)."""
        if not TRIAL_ID.fullmatch(str(trial_id)):
            raise UserError(f"trial id {str(trial_id)[:40]!r} from the chief is not a KerasTuner trial id; "
                            "this worker only runs trials of a chief it trusts")
        trial_dir = Path(self.search_dir) / f"trial_{trial_id}"
        if not trial_dir.resolve().is_relative_to(Path(self.search_dir).resolve()):
            raise UserError(f"{trial_dir}: outside the search folder {self.search_dir}; remove the link")
        trial_dir.mkdir(parents=True, exist_ok=True)
        return trial_dir

    def keeps_last_weights(self, trial) -> bool:
        """A Hyperband trial keeps its last weights: a promoted trial goes on from there."""
        return self.continue_promoted and HYPERBAND_EPOCHS in trial.hyperparameters.values

    def trial_context(self, trial, execution: str = "") -> RunContext:
        """A trial is compared with the search's other trials, draws no PNGs (best/ gets them), records
        its failures, and reuses what earlier trials in this process made."""
        return RunContext(cohort=self.search_dir, continuation=self.continuation(trial, execution),
                          keep_last_weights=self.keeps_last_weights(trial), plots=False, record_failures=True,
                          cache=self.cache)

    def run_trial(self, trial, *args, **kwargs) -> dict[str, float]:
        overrides = self.trial_overrides(trial)
        trial_dir = self.checked_trial_dir(trial.trial_id)
        parent = trial.hyperparameters.values.get(HYPERBAND_PARENT)
        if parent is not None:
            self.checked_trial_dir(parent)
        if self.executions == 1:
            runs = [run_trial_config(overrides, trial_dir, self.trial_context(trial))]
        else:
            runs = [run_trial_config([*overrides, f"trainer.seed={self.seed + i}"], trial_dir / f"execution_{i}",
                                     self.trial_context(trial, f"execution_{i}"))
                    for i in range(self.executions)]
        # KerasTuner takes numbers only; metrics.json also says how the trial ran (precision, cache).
        return {k: statistics.mean(r[k] for r in runs) for k in OBJECTIVES}

    def on_trial_begin(self, trial) -> None:
        super().on_trial_begin(trial)
        self.trial_started = time.monotonic()

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        self.trials_run += 1
        log_trial(self.search_dir, trial, time.monotonic() - self.trial_started, self.tuner_id, self.cache)
        if is_worker(self):  # its oracle lives in the chief, which reports the search's progress
            log.info("trial [%s] %s -> %s", trial.trial_id, shlex.join(self.trial_values(trial)),
                     result_text(trial, self.oracle.objective.name))
        else:
            log.info(self.describe_ended(trial, time.monotonic() - self.started, self.trials_run))

    def trial_values(self, trial) -> list[str]:
        """The overrides that make this trial differ from the others."""
        return self.trial_overrides(trial)[len(self.base):]

    def describe_ended(self, trial, elapsed: float, ended_here: int) -> str:
        if trial.status == "FAILED" and not trial.message:  # a worker's message does not travel to the chief
            trial.message = read_run(Path(self.get_trial_dir(trial.trial_id))).error
        return progress_line(self.oracle, trial, self.trial_values(trial), elapsed, ended_here)

    # Trials are runs that save their own model.keras; KerasTuner's hooks for models are not used.
    def save_model(self, trial_id, model, step=0):  # pragma: no cover - never called by this tuner
        pass

    def load_model(self, trial):  # pragma: no cover
        raise NotImplementedError("load the trial's model.keras from its folder")


def resident_memory_mb() -> float | None:
    """This process's resident set size (Linux), for watching memory trial after trial."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def log_trial(search_dir: Path, trial, seconds: float, tuner_id: str, cache: RunCache) -> None:
    """One JSON line per trial run: who ran it, wall time, status, memory afterwards, and how often
    this process decoded the images so far."""
    entry = {"trial_id": trial.trial_id, "status": trial.status, "seconds": round(seconds, 3),
             "rss_mb": resident_memory_mb(), "pid": os.getpid(), "tuner_id": tuner_id,
             "decode_passes": cache.passes["decode"], "cache_mb": round(cache.bytes / 2**20, 1), "time": time.time()}
    safe_write.append_line(search_dir / "trials.jsonl", json.dumps(entry), search_dir)


def result_text(trial, objective: str) -> str:
    """`val_accuracy=0.9500`, or the trial's status and the last line of its error."""
    if trial.metrics.exists(objective):
        return f"{objective}={trial.metrics.get_best_value(objective):.4f}"
    last_line = (trial.message or "").strip().splitlines()[-1:]
    reason = LIBRARY_ERROR_PREFIX.sub("", last_line[0]) if last_line else ""  # the reason, not the library's class
    return f"{trial.status.lower()}: {reason}"


def progress_line(oracle: kt.Oracle, trial, values: list[str], elapsed: float, ended_here: int) -> str:
    """trial i of N, its values, its score, best so far, elapsed and ETA."""
    ended = oracle.end_order
    done = ended.index(trial.trial_id) + 1 if trial.trial_id in ended else len(ended) + 1
    total = oracle.max_trials
    best = oracle.get_best_trials(1)
    best_score = best[0].score if best and best[0].score is not None else None
    eta = f"{elapsed / ended_here * (total - done) / 60:.1f} min" if total and ended_here else "?"
    best_text = f"{best_score:.4f}" if best_score is not None else "-"
    of = f" of {total}" if total else ""
    return (f"trial {done}{of} [{trial.trial_id}] {shlex.join(values)} -> {result_text(trial, oracle.objective.name)}; "
            f"best {best_text}; elapsed {elapsed / 60:.1f} min, ETA {eta}")
