"""The entry point `python -m imgexp` / `imgexp`: @hydra.main and mapping errors to one line.

Hydra composes the config; the task hands it to a search (tuning/) or runs it
as one job (job.py). TensorFlow is imported inside the task, so `--help` and
`--cfg job` answer without it.
"""

import difflib
import functools
import logging
import os
import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from imgexp.config import config_path, register_configs
from imgexp.data.run_cache import RunCache
from imgexp.errors import EXIT_INTERRUPTED, Interrupted, UserError, exit_with
from imgexp.hydra_compat import is_conflicting_flags, is_missing_value, is_not_a_list, is_unknown_key
from imgexp.job import run_job, run_sweep_job
from imgexp.run_folder import is_finished, write_failure

register_configs()
log = logging.getLogger("imgexp")
# What this process is running, for the one line a Ctrl-C ends in: mode, run or sweep folder.
started: dict[str, object] = {}


@hydra.main(version_base="1.3", config_path=config_path(), config_name="config")
def _hydra_main(cfg: DictConfig) -> float | None:
    hydra_cfg = HydraConfig.get()
    run_dir, choices = Path(hydra_cfg.runtime.output_dir), dict(hydra_cfg.runtime.choices)
    started.update(search=cfg.get("tuner") is not None, run_dir=run_dir, multirun=hydra_cfg.mode == RunMode.MULTIRUN,
                   sweep_dir=Path(hydra_cfg.runtime.cwd) / hydra_cfg.sweep.dir)
    if cfg.get("tuner") is not None:
        from imgexp.tensorflow_runtime import import_tensorflow

        import_tensorflow()  # quietly, before KerasTuner imports it
        from imgexp.tuning.search import run_search

        try:
            return run_search(cfg, list(hydra_cfg.overrides.task), choices, run_dir)
        except UserError as err:
            exit_with(str(err))
    if cfg.search.distributed.role or cfg.search.distributed.local_workers:
        exit_with("search.distributed spreads the trials of a search: add tuner=... search_space=... "
                  "(e.g. tuner=random search_space=cnn), or leave search.distributed unset")
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.runtime.cwd) / hydra_cfg.sweep.dir  # as given, or relative to where it started
        return run_sweep_job(cfg, run_dir, choices, sweep_dir, sweep_cache())
    log.info("run folder: %s", run_dir)
    try:
        metrics = run_job(cfg, run_dir, choices)
    except UserError as err:  # exit here: Hydra would add its own lines around an exception
        if not is_finished(run_dir):  # compare and TensorBoard show it as failed, with its reason
            write_failure(run_dir, str(err))
        exit_with(str(err))
    return metrics["val_accuracy"]


@functools.cache
def sweep_cache() -> RunCache:
    """What a multirun's jobs in this process reuse (listings, decoded images, features): the sweep owns it."""
    return RunCache()


def describe_config_error(err: Exception) -> str:
    """One line for a Hydra or OmegaConf error: the key, what is wrong, the fix."""
    if isinstance(err, OverrideParseException):
        reason = " ".join(err.message.split("See https://")[0].split())  # Hydra appends a link to its grammar
        return (f"{err.override}: not a valid override ({reason}); write key=value, lists as "
                "key=[a,b] with the brackets closed, and quote the whole override in the shell, "
                "e.g. 'dataset.image_size=[64,64]'")
    if isinstance(err, MissingConfigException) and err.options:
        group = Path(err.missing_cfg_file).parent.name if err.missing_cfg_file else "option"
        wrong = Path(err.missing_cfg_file).name if err.missing_cfg_file else "?"
        options = sorted(err.options)
        plugin = PLUGINS.get((group, wrong))
        if plugin:
            return f"hydra/{group}={wrong}: not installed; pip install {plugin}, then run the command again"
        hint = nearest(wrong, options)
        return f"{group}={wrong}: no such option{hint}{' Or' if hint else ';'} choose one of {', '.join(options)}"
    cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    key = getattr(cause, "full_key", None)
    msg = getattr(cause, "msg", None) or str(cause).splitlines()[0]
    msg = msg.splitlines()[0]
    if key and is_unknown_key(msg):
        hint = nearest_key(key) or "; check the spelling"
        return f"{key}: unknown config key{hint} (`python -m imgexp --cfg job` lists every key)"
    if key and key.endswith(("image_size", "input_size")) and is_not_a_list(msg):
        value = getattr(cause, "value", None)
        example = f"[{value},{value}]" if isinstance(value, int) else "[height,width]"
        return f"{key}={value}: give [height,width], e.g. '{key}={example}'"
    if key and is_missing_value(msg):
        return f"{key}: needs a value; add {key}=... to the command"
    if key:
        return f"{key}: {msg}"
    return msg


# Hydra plugins imgexp documents: (group, option) -> what to install.
PLUGINS = {("launcher", "joblib"): "'imgexp[joblib]' (hydra-joblib-launcher)",
           ("launcher", "submitit_local"): "'imgexp[slurm]' (hydra-submitit-launcher)",
           ("launcher", "submitit_slurm"): "'imgexp[slurm]' (hydra-submitit-launcher)",
           ("launcher", "ray"): "'imgexp[ray]' (hydra-ray-launcher)",
           ("sweeper", "optuna"): "'imgexp[optuna]' (hydra-optuna-sweeper)"}
# Names people bring from Keras and other tools: what imgexp calls them.
ALIASES = {"learning_rate": "lr", "num_epochs": "epochs", "patience": "early_stopping_patience",
           "img_size": "image_size", "target_size": "image_size", "val_split": "validation_split",
           "validation_size": "validation_split", "augment": "augmentation", "backbone": "model"}


def nearest(wrong: str, names: list[str]) -> str:
    """`; did you mean X?` for the closest name, or nothing."""
    if wrong in ALIASES and ALIASES[wrong] in names:
        return f"; did you mean {ALIASES[wrong]}?"
    close = difflib.get_close_matches(wrong, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def nearest_key(key: str) -> str:
    """The suggestion for an unknown `group.key`, from the keys of the group's schema."""
    from imgexp.config_use import schema_keys

    group, _, leaf = key.rpartition(".")
    top = group.split(".")[0] if group else ""
    names = sorted(schema_keys().get(top, set())) if group else sorted(schema_keys())
    if group and leaf in names:  # a key of another option of the group (model.filters with a backbone)
        owner = other_option(top, leaf)
        return f"; {key} is a key of {owner}, not of the {top} chosen" if owner else f"; not a key of this {top}"
    hint = nearest(leaf, names)
    return hint.replace("did you mean ", f"did you mean {group}.") if group and hint else hint


def other_option(group: str, leaf: str) -> str | None:
    """Which options of `group` have the key `leaf` (the model group's two schemas)."""
    import dataclasses

    from imgexp.config import BackboneConfig, CNNConfig

    if group != "model":
        return None
    cnn, backbone = ({f.name for f in dataclasses.fields(c)} for c in (CNNConfig, BackboneConfig))
    if leaf in cnn and leaf not in backbone:
        return "model=cnn"
    if leaf in backbone and leaf not in cnn:
        return "the backbones (model=mobilenetv2, resnet50, ...)"
    return None


# Launchers' errors for a job process that died (killed, out of memory): no traceback needed.
LAUNCHER_JOB_DIED = {"TerminatedWorkerError": "a joblib worker process died",
                     "UncompletedJobError": "a submitit job ended without finishing"}


def describe_launcher_failure(err: Exception) -> str | None:
    what = LAUNCHER_JOB_DIED.get(type(err).__name__)
    if what is None:
        return None
    return (f"{what}, so the sweep stopped ({str(err).strip().splitlines()[0]}); jobs that finished are kept: "
            "run the same command with hydra.sweep.dir=<the sweep output dir above> to run the rest")


def resume_line(where: str) -> str:
    """What a Ctrl-C prints: where it stopped and the command that goes on from there."""
    args = [a for a in sys.argv[1:] if not a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    command = lambda *extra: shlex.join(["python", "-m", "imgexp", *args, *extra])  # noqa: E731
    where = f" {where}" if where else ""
    if started.get("search"):
        return f"imgexp: interrupted{where}; the same command resumes the search: {command()}"
    if started.get("multirun"):
        return f"imgexp: interrupted{where}; resume the sweep with: {command('hydra.sweep.dir=' + str(started['sweep_dir']))}"
    if "run_dir" in started:
        return f"imgexp: interrupted{where}; resume with: {command('hydra.run.dir=' + str(started['run_dir']))}"
    return "imgexp: interrupted before the run started"


def main() -> None:
    """Console entry: user errors end in one line and exit 2; bugs still raise."""
    # Hydra would print config errors over several lines; have it raise so we can say one.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        _hydra_main()
    except KeyboardInterrupt as err:  # Ctrl-C: one line and how to go on, no traceback
        print(resume_line(err.where if isinstance(err, Interrupted) else ""), file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except UserError as err:
        exit_with(str(err))
    except (HydraException, OmegaConfBaseException) as err:
        exit_with(describe_config_error(err))
    except ValueError as err:  # Hydra's own flags that do not go together (-m with --cfg, ...)
        if not is_conflicting_flags(err):
            raise
        exit_with(f"{err}; give one of them per command")
    except Exception as err:
        message = describe_launcher_failure(err)
        if message is None:
            raise  # a bug: keep its traceback
        exit_with(message)


if __name__ == "__main__":
    main()
