"""Entry point: `python -m imgexp` / `imgexp`. Hydra composes the config, then one run.

Only this module and the tuning layer touch DictConfig; the run itself gets the
typed `Config`. TensorFlow is imported inside the task, so `--help` and
`--cfg job` answer without it.
"""

import logging
import os
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from imgexp.config import Config, register_configs, validate
from imgexp.errors import UserError, exit_with
from imgexp.tracking.hparams import hparams_from_config

register_configs()
log = logging.getLogger("imgexp")


def to_config(cfg: DictConfig) -> Config:
    """The typed, validated config of a composed DictConfig."""
    config = OmegaConf.to_object(cfg)
    validate(config)
    return config


def run_job(cfg: DictConfig, run_dir: Path, choices: dict[str, Any], record_failures: bool = False) -> dict[str, float]:
    """Run one experiment from a composed config; the path every run, job and trial takes.

    With `record_failures` (sweep jobs, trials) a config that fails validation still
    leaves a failed HParams session, so it shows in TensorBoard's table.
    """
    hparams = hparams_from_config(OmegaConf.to_container(cfg, resolve=True), choices)
    try:
        config = to_config(cfg)
    except UserError:
        if record_failures:
            from imgexp.tracking.tensorboard import record_failed_session

            record_failed_session(run_dir / "tb", hparams, str(run_dir))
        raise
    from imgexp.training.run import run_experiment  # TensorFlow lives behind this import

    return run_experiment(config, run_dir, hparams)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir, choices = Path(hydra_cfg.runtime.output_dir), dict(hydra_cfg.runtime.choices)
    if cfg.get("tuner") is not None:
        from imgexp.tuning.search import run_search

        try:
            return run_search(cfg, list(hydra_cfg.overrides.task), choices, run_dir)
        except UserError as err:
            exit_with(str(err))
    if cfg.search.distributed.role or cfg.search.distributed.local_workers:
        exit_with("search.distributed spreads the trials of a search: add tuner=... search_space=... "
                  "(e.g. tuner=random search_space=cnn), or leave search.distributed unset")
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return run_sweep_job(cfg, run_dir, choices)
    try:
        metrics = run_job(cfg, run_dir, choices)
    except UserError as err:  # exit here: Hydra would add its own lines around an exception
        exit_with(str(err))
    return metrics["val_accuracy"]


def run_sweep_job(cfg: DictConfig, run_dir: Path, choices: dict[str, Any]) -> float | None:
    """One multirun job: a failure is recorded in its folder and the sweep goes on."""
    from imgexp.tracking.records import read_run, write_failure

    done = read_run(run_dir)
    if done.status == "finished":  # the same sweep run again (the guard checked): keep what it made
        log.info("job %s finished before; kept as it is", run_dir)
        return done.metrics["val_accuracy"]
    try:
        return run_job(cfg, run_dir, choices, record_failures=True)["val_accuracy"]
    except UserError as err:
        message = str(err)
    except Exception as err:  # a bug in one job must not lose the others; its traceback is in the job's log
        log.exception("job failed")
        message = f"{type(err).__name__}: {err}"
    write_failure(run_dir, message)
    log.error("job failed: %s", message)
    return None


def describe_config_error(err: Exception) -> str:
    """One line for a Hydra or OmegaConf error: the key, what is wrong, the fix."""
    if isinstance(err, MissingConfigException) and err.options:
        group = Path(err.missing_cfg_file).parent.name if err.missing_cfg_file else "option"
        wrong = Path(err.missing_cfg_file).name if err.missing_cfg_file else "?"
        options = sorted(o for o in err.options if not o.endswith("_schema"))
        return f"{group}={wrong}: no such option; choose one of {', '.join(options)}"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    key = getattr(cause, "full_key", None)
    msg = getattr(cause, "msg", None) or str(cause).splitlines()[0]
    msg = msg.splitlines()[0]
    if key and "not in" in msg:  # "Key 'x' not in 'CNNConfig'", "... not in struct"
        return f"{key}: unknown config key ({msg}); check the spelling, `python -m imgexp --cfg job` lists the keys"
    if key and "Missing mandatory value" in msg:
        return f"{key}: needs a value; add {key}=... to the command"
    if key:
        return f"{key}: {msg}"
    return msg


# Launchers' errors for a job process that died (killed, out of memory): no traceback needed.
LAUNCHER_JOB_DIED = {"TerminatedWorkerError": "a joblib worker process died",
                     "UncompletedJobError": "a submitit job ended without finishing"}


def describe_launcher_failure(err: Exception) -> str | None:
    what = LAUNCHER_JOB_DIED.get(type(err).__name__)
    if what is None:
        return None
    return (f"{what}, so the sweep stopped ({str(err).strip().splitlines()[0]}); jobs that finished are kept: "
            "run the same command with hydra.sweep.dir=<the sweep output dir above> to run the rest")


def main() -> None:
    """Console entry: user errors end in one line and exit 2; bugs still raise."""
    # Hydra would print config errors over several lines; have it raise so we can say one.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _hydra_main()
    except UserError as err:
        exit_with(str(err))
    except (HydraException, OmegaConfBaseException) as err:
        exit_with(describe_config_error(err))
    except Exception as err:
        message = describe_launcher_failure(err)
        if message is None:
            raise  # a bug: keep its traceback
        exit_with(message)


if __name__ == "__main__":
    main()
