"""Run one job from a composed config: the path a run, a multirun job and a search trial all take.

The entry point (app.py) and the tuner (tuning/tuner.py) both call `run_job`;
it validates the DictConfig into the typed `Config` and hands it to training,
which is where TensorFlow is first imported.
"""

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imgexp.config import Config, validate
from imgexp.data.run_cache import RunCache
from imgexp.errors import UserError
from imgexp.run_context import RunContext
from imgexp.run_folder import TENSORBOARD_DIR, read_run, write_failure
from imgexp.tracking.hparams import hparams_from_config, session_name

log = logging.getLogger("imgexp")


def to_config(cfg: DictConfig) -> Config:
    """The typed, validated config of a composed DictConfig."""
    config = OmegaConf.to_object(cfg)
    validate(config)
    return config


def check_unread(config: Config, choices: dict[str, Any], strict: bool, cache: RunCache | None = None) -> None:
    """A key set but not read by this run: refused (`strict`, one run), or said once in the log (a sweep's
    job or a search's trial, where the key may apply to other jobs). The defaults it compares with are
    composed by Hydra once per owner (`cache`) for the same group choices."""
    from imgexp.compose import compose_config
    from imgexp.config_use import option_overrides, unread_settings

    found = unread_settings(config, compose_config(option_overrides(choices), cache)[0])
    if found and strict:
        raise UserError(found[0])
    for sentence in found:
        log.warning("%s (this job ignores it)", sentence)


def run_job(cfg: DictConfig, run_dir: Path, choices: dict[str, Any], context: RunContext | None = None) -> dict[str, float]:
    """Run one experiment from a composed config; return its metrics.

    `context` (imgexp.run_context; a fresh one for a single run) says how the run takes part in
    what started it. With `context.record_failures` (sweep jobs, trials) a config that fails
    validation still leaves a failed HParams session, so it shows in TensorBoard's table.
    """
    context = context or RunContext()
    hparams = hparams_from_config(OmegaConf.to_container(cfg, resolve=True), choices)
    try:
        with context.stopwatch.phase("config"):
            config = to_config(cfg)
            check_unread(config, choices, strict=not context.record_failures, cache=context.cache)
    except UserError:
        if context.record_failures:
            from imgexp.tracking.tensorboard import record_failed_session

            record_failed_session(run_dir / TENSORBOARD_DIR, hparams, session_name(run_dir))
        raise
    from imgexp.tensorflow_runtime import import_tensorflow

    import_tensorflow()  # quietly, before anything else imports it
    from imgexp.training.run import run_experiment

    return run_experiment(config, run_dir, hparams, context)


def run_sweep_job(cfg: DictConfig, run_dir: Path, choices: dict[str, Any], sweep_dir: Path,
                  cache: RunCache) -> float | None:
    """One multirun job: a failure is recorded in its folder and the sweep goes on; a pruner
    compares it with the other jobs in `sweep_dir`; `cache` is the sweep's (its jobs in this
    process reuse what the first one made)."""
    earlier = read_run(run_dir)
    if earlier.ended:  # the same sweep run again (the guard checked): keep what it made
        log.info("job %s finished before; kept as it is", run_dir)
        return earlier.metrics["val_accuracy"]
    try:
        context = RunContext(cohort=sweep_dir, record_failures=True, cache=cache)
        return run_job(cfg, run_dir, choices, context)["val_accuracy"]
    except UserError as err:
        message = str(err)
    except Exception as err:  # a bug in one job must not lose the others; its traceback is in the job's log
        log.exception("job failed")
        message = f"{type(err).__name__}: {err}"
    write_failure(run_dir, message)
    log.error("job failed: %s", message)
    return None
