"""Entry point: `python -m imgexp` / `imgexp`. Hydra composes the config, then one run.

Only this module and the tuning layer touch DictConfig; the run itself gets the
typed `Config`. TensorFlow is imported inside the task, so `--help` and
`--cfg job` answer without it.
"""

import os
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from imgexp.config import Config, register_configs, validate
from imgexp.errors import UserError, exit_with
from imgexp.tracking.hparams import hparams_from_config

register_configs()


def to_config(cfg: DictConfig) -> Config:
    """The typed, validated config of a composed DictConfig."""
    config = OmegaConf.to_object(cfg)
    validate(config)
    return config


def run_job(cfg: DictConfig, run_dir: Path, choices: dict[str, Any]) -> dict[str, float]:
    """Run one experiment from a composed config; the path every run and trial takes."""
    config = to_config(cfg)
    from imgexp.training.run import run_experiment  # TensorFlow lives behind this import

    hparams = hparams_from_config(OmegaConf.to_container(cfg, resolve=True), choices)
    return run_experiment(config, run_dir, hparams)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> float:
    runtime = HydraConfig.get().runtime
    try:
        metrics = run_job(cfg, Path(runtime.output_dir), dict(runtime.choices))
    except UserError as err:  # exit here: Hydra would add its own lines around an exception
        exit_with(str(err))
    return metrics["val_accuracy"]


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
    if key and ("not in" in msg or "not in struct" in msg):
        return f"{key}: unknown config key ({msg}); check the spelling, `python -m imgexp --cfg job` lists the keys"
    if key and "Missing mandatory value" in msg:
        return f"{key}: needs a value; add {key}=... to the command"
    if key:
        return f"{key}: {msg}"
    return msg


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


if __name__ == "__main__":
    main()
