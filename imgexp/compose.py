"""Compose a run's config from overrides without the CLI (tests, and the tuner's trials)."""

from typing import Any

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from imgexp.config import config_path, register_configs


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> tuple[DictConfig, dict[str, Any]]:
    """(task config, group choices) for `python -m imgexp *overrides`, as Hydra would compose it.

    Inside a running app (a search composing its trials) the app's own config
    search path is used, `--config-dir` additions included.
    """
    register_configs()
    if GlobalHydra.instance().is_initialized():
        config_name = HydraConfig.get().job.config_name if HydraConfig.initialized() else "config"
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    else:
        path = config_path()
        context = (initialize_config_module(path.removeprefix("pkg://"), version_base="1.3")
                   if path.startswith("pkg://") else initialize_config_dir(path, version_base="1.3"))
        with context:
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    choices = dict(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices
